// The CUDA elementwise kernels' own code (kernels/cuda/elementwise.cu,
// compiled as C++ against the emulation) against the CPU kernels and the
// CPU's formulas: broadcasting binary ops over permuted, sliced and reversed
// operands, fill / copy / axpy / scale through strides (gaps stay untouched),
// dtype conversions, scalar ops, activations at their kinks, and the random
// fills (the counter of an element is its row-major position, whatever the
// layout). Outputs poisoned before every run; default grid and a 2-block
// grid with reverse thread order.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/strided_loop.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/binary.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
namespace k = ofa::kernels;
using ofa::DType;
using namespace ofa_emu_test;
using Dims = std::vector<int64_t>;

template <int N>
k::StridedArgs<N> args_of(const Dims& shape, std::array<Dims, N> strides) {
  k::StridedArgs<N> a;
  EXPECT_TRUE(k::make_strided_args(k::StridedLayout<N>{shape, strides}, &a));
  return a;
}

struct Grid {
  int64_t max_blocks;
  ofa::emu::Order order;
};
std::string grid_name(const ::testing::TestParamInfo<Grid>& i) {
  return i.param.max_blocks > 0 ? "fewblocks_reverse" : "default";
}

class ElementwiseEmulated : public ::testing::TestWithParam<Grid> {
 protected:
  EmuSettings settings_{GetParam().max_blocks, GetParam().order};

  // out [2, 3, 5, 7] stored channels-last (dims 1 last in memory); a is a
  // [2, 3, 5, 7] view of a larger buffer, reversed along dim 3; b is
  // [1, 3, 1, 7] broadcast (zero strides): every operand strided differently.
  template <class T>
  void binary(k::BinOp op) {
    const Dims shape{2, 3, 5, 7};
    const Dims os{105, 1, 21, 3};  // NHWC of [2,3,5,7]
    std::vector<T> abuf = random_vec<T>(2 * 3 * 5 * 9, 1), b = random_vec<T>(3 * 7, 2);
    const Dims as{135, 45, 9, -1};
    const T* a0 = abuf.data() + 7;  // element (0,0,0,0) at offset 7; (.., 6) at offset 1
    const Dims bs{0, 7, 0, 1};
    std::vector<T> want(210), got(210);
    cpu::binary_strided(op, shape, want.data(), os, a0, as, b.data(), bs);
    poison(got);
    be().binary(op, dtype_of<T>(), got.data(), a0, b.data(), args_of<3>(shape, {os, as, bs}), nullptr);
    EXPECT_TRUE(all_near(got, want, 0.0));  // one rounding of the same two operands: bitwise equal
  }
};

TEST_P(ElementwiseEmulated, BinaryBroadcastFloat) {
  for (auto op : {k::BinOp::Add, k::BinOp::Sub, k::BinOp::Mul}) binary<float>(op);
}
TEST_P(ElementwiseEmulated, BinaryBroadcastDouble) {
  for (auto op : {k::BinOp::Add, k::BinOp::Sub, k::BinOp::Mul}) binary<double>(op);
}

TEST_P(ElementwiseEmulated, FillThroughStridesLeavesGapsAlone) {
  // Every other column of a [5, 13] block inside [5, 26]: 65 of 130 written.
  std::vector<float> buf(130);
  poison(buf);
  be().fill(DType::F32, buf.data(), args_of<1>({5, 13}, {Dims{26, 2}}), 2.5, nullptr);
  for (size_t i = 0; i < buf.size(); ++i) {
    if (i % 2 == 0) EXPECT_EQ(buf[i], 2.5f) << i;
    else EXPECT_TRUE(std::isnan(buf[i])) << i;
  }
  std::vector<int64_t> ib(37, -1);
  be().fill(DType::I64, ib.data(), args_of<1>({37}, {Dims{1}}), 7.0, nullptr);
  for (int64_t v : ib) EXPECT_EQ(v, 7);
}

TEST_P(ElementwiseEmulated, CopyConvertsTypesThroughStrides) {
  // float [7, 9] transposed into double [9, 7] dense.
  std::vector<float> src = random_vec<float>(63, 3, -50.0, 50.0);
  std::vector<double> dst(63);
  poison(dst);
  be().copy(DType::F64, dst.data(), DType::F32, src.data(), args_of<2>({9, 7}, {Dims{7, 1}, Dims{1, 9}}), nullptr);
  for (int64_t i = 0; i < 9; ++i)
    for (int64_t j = 0; j < 7; ++j) ASSERT_EQ(dst[i * 7 + j], double(src[j * 9 + i])) << i << "," << j;
  // double -> int64 truncates toward zero, int64 -> float exactly, as static_cast.
  std::vector<int64_t> iv(63, 0);
  be().copy(DType::I64, iv.data(), DType::F64, dst.data(), args_of<2>({63}, {Dims{1}, Dims{1}}), nullptr);
  for (size_t i = 0; i < 63; ++i) ASSERT_EQ(iv[i], static_cast<int64_t>(dst[i]));
  std::vector<float> back(63);
  poison(back);
  be().copy(DType::F32, back.data(), DType::I64, iv.data(), args_of<2>({63}, {Dims{1}, Dims{1}}), nullptr);
  for (size_t i = 0; i < 63; ++i) ASSERT_EQ(back[i], static_cast<float>(iv[i]));
}

TEST_P(ElementwiseEmulated, AxpyAndScaleThroughStrides) {
  // dst [3, 11] rows of a [3, 16] buffer += 0.5 * src broadcast along rows.
  std::vector<double> dst = random_vec<double>(48, 4), src = random_vec<double>(11, 5), want = dst;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 11; ++j) want[i * 16 + j] += 0.5 * src[j];
  be().axpy(DType::F64, dst.data(), src.data(), 0.5, args_of<2>({3, 11}, {Dims{16, 1}, Dims{0, 1}}), nullptr);
  EXPECT_TRUE(all_near(dst, want, 1e-15));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 11; ++j) want[i * 16 + j] *= -3.0;
  be().scale(DType::F64, dst.data(), -3.0, args_of<1>({3, 11}, {Dims{16, 1}}), nullptr);
  EXPECT_TRUE(all_near(dst, want, 0.0));
}

TEST_P(ElementwiseEmulated, ScalarOpsMatchCpu) {
  for (int64_t n : {1, 7, 333}) {
    std::vector<float> x = random_vec<float>(size_t(n), 6), want(x.size()), got(x.size());
    for (auto op : {k::ScalarOp::Add, k::ScalarOp::Mul}) {
      cpu::scalar_op(op, x.data(), 0.75f, want.data(), n);
      poison(got);
      be().scalar_op(op, DType::F32, x.data(), 0.75, got.data(), n, nullptr);
      EXPECT_TRUE(all_near(got, want, 0.0)) << n;
    }
  }
}

template <class T>
void activations() {
  // The kinks (-3, 0, 3, 6) and random values on both sides of them.
  std::vector<T> x = random_vec<T>(301, 7, -8.0, 8.0);
  for (T v : {T(-3), T(0), T(3), T(6), T(-0.0)}) x.push_back(v);
  std::vector<T> gy = random_vec<T>(x.size(), 8), want(x.size()), got(x.size());
  const int64_t n = static_cast<int64_t>(x.size());
  for (auto act : {k::Act::Relu, k::Act::Relu6, k::Act::HSwish, k::Act::HSigmoid}) {
    cpu::activation_forward(act, x.data(), want.data(), n);
    poison(got);
    be().activation_forward(act, dtype_of<T>(), x.data(), got.data(), n, nullptr);
    EXPECT_TRUE(all_near(got, want, 0.0)) << "forward " << int(act);
    cpu::activation_backward(act, x.data(), gy.data(), want.data(), n);
    poison(got);
    be().activation_backward(act, dtype_of<T>(), x.data(), gy.data(), got.data(), n, nullptr);
    EXPECT_TRUE(all_near(got, want, 0.0)) << "backward " << int(act);
  }
}
TEST_P(ElementwiseEmulated, ActivationsMatchCpuFloat) { activations<float>(); }
TEST_P(ElementwiseEmulated, ActivationsMatchCpuDouble) { activations<double>(); }

// The draws of engine/random.cpp, written out: counter = base + row-major position.
template <class T>
T uniform_ref(uint64_t seed, uint64_t c, double lo, double hi) {
  const k::Philox4 r = k::philox4x32_10(seed, c);
  T u;
  if constexpr (std::is_same_v<T, float>) u = k::u32_to_unit_float(r.v[0]);
  else u = k::u64_to_unit_double(r.v[0], r.v[1]);
  return static_cast<T>(lo) + static_cast<T>(hi - lo) * u;
}

TEST_P(ElementwiseEmulated, RandomFillsFollowRowMajorCounters) {
  // A [5, 6] tensor stored transposed (strides 1, 5): element (i, j) at
  // offset i + 5 j gets counter base + 6 i + j.
  const uint64_t seed = 1234, base = 99;
  const auto a = args_of<2>({5, 6}, {Dims{1, 5}, Dims{6, 1}});
  std::vector<float> u(30);
  poison(u);
  be().random_fill(DType::F32, u.data(), a, seed, base, k::RandomDist::Uniform, -2.0, 3.0, nullptr);
  std::vector<double> nd(30), bd(30);
  poison(nd);
  poison(bd);
  be().random_fill(DType::F64, nd.data(), a, seed, base, k::RandomDist::Normal, 1.0, 2.0, nullptr);
  be().random_fill(DType::F64, bd.data(), a, seed, base, k::RandomDist::Bernoulli, 0.3, 0.0, nullptr);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 6; ++j) {
      const uint64_t c = base + uint64_t(6 * i + j);
      const size_t off = size_t(i + 5 * j);
      EXPECT_EQ(u[off], uniform_ref<float>(seed, c, -2.0, 3.0));
      const k::Philox4 r = k::philox4x32_10(seed, c);
      const double u1 = std::max(1e-300, k::u64_to_unit_double(r.v[0], r.v[1]));
      const double u2 = k::u64_to_unit_double(r.v[2], r.v[3]);
      EXPECT_NEAR(nd[off], 1.0 + 2.0 * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2), 1e-12);
      EXPECT_EQ(bd[off], k::u64_to_unit_double(r.v[0], r.v[1]) < 0.3 ? 1.0 : 0.0);
    }
}

INSTANTIATE_TEST_SUITE_P(Grid, ElementwiseEmulated,
                         ::testing::Values(Grid{0, ofa::emu::Order::Forward}, Grid{2, ofa::emu::Order::Reverse}),
                         grid_name);

TEST(ElementwiseEmulatedErrors, ClearMessages) {
  std::vector<int64_t> iv(4);
  const auto a = args_of<3>({4}, {Dims{1}, Dims{1}, Dims{1}});
  const std::string m = emu_error_of([&] {
    be().binary(k::BinOp::Add, DType::I64, iv.data(), iv.data(), iv.data(), a, nullptr);
  });
  EXPECT_NE(m.find("binary op (CUDA): dtype int64 is not supported"), std::string::npos) << m;
  // More than kMaxDims dims that cannot coalesce: the caller is told (and copies to contiguous first).
  Dims shape(9, 2), st(9);
  for (int d = 0; d < 9; ++d) st[d] = int64_t(1) << (2 * (8 - d));  // gaps everywhere
  k::StridedArgs<1> out;
  EXPECT_FALSE(k::make_strided_args(k::StridedLayout<1>{shape, {st}}, &out));
}

}  // namespace
