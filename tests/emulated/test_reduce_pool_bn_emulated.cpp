// The CUDA reduction, global average pooling and batch-norm kernels
// (kernels/cuda/reduce.cu, pool.cu, batch_norm.cu, compiled as C++ against
// the emulation, through the emulated backend) against the CPU kernels:
// float and double, odd sizes, strided views, outputs poisoned with NaN, and
// the reductions bit for bit the same under a small or the default grid, 1
// or several OS threads, forward or reverse thread order.
//
// Tolerances: the CPU and CUDA kernels both sum in double but in different
// orders (the CPU pairs four rows at a time, the CUDA kernels stride lanes and
// add parts), so sums agree to a few double ulps of the partial sums and the
// float results to within one float rounding: 1e-5 (float) / 1e-12 (double)
// relative, as all_near measures. Elementwise parts with the CPU's own
// arithmetic are compared exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/common/bn_math.h"
#include "kernels/common/strided_loop.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
using ofa::DType;
using ofa::emu::Order;
using ofa::kernels::StridedArgs;
using ofa::kernels::StridedLayout;
using namespace ofa_emu_test;

template <class T>
double tol() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-12;
}

// The launch settings every determinism check runs under.
struct Setting {
  int64_t max_blocks;
  Order order;
  int workers;
};
const Setting kSettings[] = {{3, Order::Reverse, 2}, {4096, Order::Forward, 0}, {1, Order::Forward, 1},
                             {7, Order::Forward, 4}};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Runs f(setting) under every setting; each result must be bitwise the first.
template <class F>
void expect_deterministic(F f, const char* what) {
  auto first = [&] {
    EmuSettings s(kSettings[0].max_blocks, kSettings[0].order, kSettings[0].workers);
    return f();
  }();
  for (size_t i = 1; i < sizeof(kSettings) / sizeof(kSettings[0]); ++i) {
    EmuSettings s(kSettings[i].max_blocks, kSettings[i].order, kSettings[i].workers);
    EXPECT_TRUE(same_bits(f(), first)) << what << ": differs with max_blocks " << kSettings[i].max_blocks;
  }
}

// ---------------------------------------------------------------- reduce_sum

// An input view (shape, strides into a buffer of `span` elements) with some
// dims reduced; the output is dense row-major over the kept dims.
struct RedCase {
  std::vector<int64_t> shape, strides;
  std::vector<bool> reduced;
  int64_t span;
};

template <class T>
struct Reduction {
  std::vector<int64_t> ks, kst, rs, rst;
  StridedArgs<2> keep;
  StridedArgs<1> red;
  int64_t n_out = 1;

  explicit Reduction(const RedCase& c) {
    for (size_t d = 0; d < c.shape.size(); ++d) {
      if (c.reduced[d]) {
        rs.push_back(c.shape[d]);
        rst.push_back(c.strides[d]);
      } else {
        ks.push_back(c.shape[d]);
        kst.push_back(c.strides[d]);
        n_out *= c.shape[d];
      }
    }
    std::vector<int64_t> ost(ks.size());
    int64_t m = 1;
    for (size_t d = ks.size(); d-- > 0;) {
      ost[d] = m;
      m *= ks[d];
    }
    StridedLayout<2> lk;
    lk.shape = ks;
    lk.strides = {kst, ost};
    StridedLayout<1> lr;
    lr.shape = rs;
    lr.strides = {rst};
    EXPECT_TRUE(ofa::kernels::make_strided_args(lk, &keep));
    EXPECT_TRUE(ofa::kernels::make_strided_args(lr, &red));
  }

  std::vector<T> cpu_out(const std::vector<T>& in, double scale) const {
    std::vector<T> out(static_cast<size_t>(n_out));
    cpu::reduce_sum(in.data(), ks, kst, rs, rst, out.data(), scale);
    return out;
  }
  std::vector<T> cuda_out(const std::vector<T>& in, double scale, size_t* scratch_calls = nullptr) const {
    std::vector<T> out(static_cast<size_t>(n_out));
    poison(out);
    HostScratch ws;
    be().reduce_sum(dtype_of<T>(), in.data(), keep, red, out.data(), scale, ws, nullptr);
    if (scratch_calls) *scratch_calls = ws.calls();
    return out;
  }
};

template <class T>
void check_reduce(const RedCase& c, double scale, bool expect_parts = false) {
  Reduction<T> r(c);
  const std::vector<T> in = random_vec<T>(static_cast<size_t>(c.span), 77 + c.span);
  const std::vector<T> want = r.cpu_out(in, scale);
  size_t calls = 0;
  {
    EmuSettings s(4096, Order::Forward);
    EXPECT_TRUE(all_near(r.cuda_out(in, scale, &calls), want, tol<T>()));
  }
  EXPECT_EQ(calls, expect_parts ? 1u : 0u) << "partial sums in scratch expected: " << expect_parts;
  expect_deterministic([&] { return r.cuda_out(in, scale); }, "reduce_sum");
}

// NHWC [3, 5, 7, 33] summed over N, H, W: the column kernel (channels contiguous).
RedCase nhwc_over_nhw() { return {{3, 5, 7, 33}, {5 * 7 * 33, 7 * 33, 33, 1}, {true, true, true, false}, 3 * 5 * 7 * 33}; }

TEST(ReduceSumEmulated, ChannelsOfNhwcColumnsFloat) { check_reduce<float>(nhwc_over_nhw(), 1.0); }
TEST(ReduceSumEmulated, ChannelsOfNhwcColumnsDouble) { check_reduce<double>(nhwc_over_nhw(), 0.25); }

// The same tensor summed over C (row kernel, a contiguous reduced run) and
// over H only (keeps N, W, C; reduced stride 7 * 33).
TEST(ReduceSumEmulated, RowsAndMiddleDims) {
  RedCase over_c = nhwc_over_nhw();
  over_c.reduced = {false, false, false, true};
  check_reduce<float>(over_c, 1.0);
  check_reduce<double>(over_c, -3.0);
  RedCase over_h = nhwc_over_nhw();
  over_h.reduced = {false, true, false, false};
  check_reduce<float>(over_h, 0.5);
}

// A full sum of 50001 elements (one output, many parts) and a tall column
// sum [20001, 9] -> [9]: partial sums in scratch, added in part order.
TEST(ReduceSumEmulated, FullSumUsesOrderedParts) {
  check_reduce<float>({{50001}, {1}, {true}, 50001}, 1.0 / 50001, true);
  check_reduce<double>({{50001}, {1}, {true}, 50001}, 1.0, true);
}
TEST(ReduceSumEmulated, TallColumnsUseOrderedParts) {
  check_reduce<float>({{20001, 9}, {9, 1}, {true, false}, 20001 * 9}, 1.0, true);
  check_reduce<double>({{20001, 9}, {9, 1}, {true, false}, 20001 * 9}, 1.0, true);
}

// A permuted, stepped view: shape [7, 6, 5] with strides [1, 14, 84] into a
// buffer of 7 * 2 * 6 * 5 (every other column), reduced over the first and
// last dims.
TEST(ReduceSumEmulated, PermutedSteppedView) {
  check_reduce<float>({{7, 6, 5}, {1, 14, 84}, {true, false, true}, 420}, 1.0);
  check_reduce<double>({{7, 6, 5}, {1, 14, 84}, {false, true, false}, 420}, 2.0);
}

// An empty reduced dim gives zeros (every output written); no kept dims
// gives a copy times scale; no outputs writes nothing.
TEST(ReduceSumEmulated, EmptyAndTrivialShapes) {
  {
    Reduction<float> r({{4, 0, 3}, {0, 3, 1}, {false, true, false}, 0});
    std::vector<float> none;
    const std::vector<float> got = r.cuda_out(none, 1.0);
    ASSERT_EQ(got.size(), 12u);
    for (float v : got) EXPECT_EQ(v, 0.f);
  }
  check_reduce<double>({{5, 3}, {3, 1}, {false, false}, 15}, 3.0);
  {
    Reduction<float> r({{0, 3}, {3, 1}, {false, true}, 0});
    std::vector<float> none;
    EXPECT_TRUE(r.cuda_out(none, 1.0).empty());
  }
  const std::vector<double> in = {1.0, std::nan(""), 2.0};
  Reduction<double> r({{3}, {1}, {true}, 3});
  EXPECT_TRUE(std::isnan(r.cuda_out(in, 1.0)[0]));  // NaN propagates as on the CPU
}

TEST(ReduceSumEmulated, ClearErrors) {
  Reduction<float> r({{3}, {1}, {true}, 3});
  std::vector<int64_t> buf(3);
  HostScratch ws;
  const std::string m =
      emu_error_of([&] { be().reduce_sum(DType::I64, buf.data(), r.keep, r.red, buf.data(), 1.0, ws, nullptr); });
  EXPECT_NE(m.find("reduce_sum (CUDA): dtype int64 is not supported"), std::string::npos) << m;
}

}  // namespace
