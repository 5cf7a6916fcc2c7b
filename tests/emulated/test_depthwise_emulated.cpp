// The CUDA depthwise convolution's own code (kernels/cuda/depthwise_conv.cu,
// compiled as C++ against the emulation, through the emulated backend) against the CPU kernel: forward,
// input gradient, weight gradient; k 3/5/7, stride 1/2, odd sizes, the active
// kernel a centre crop of a stored [16, 1, 7, 7] weight and the active channels
// a slice of it; outputs poisoned with NaN before every run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/common/conv_math.h"
#include "kernels/cpu/depthwise_conv.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
using ofa::DType;
using namespace ofa_emu_test;

constexpr int64_t kFullC = 16, kFullK = 7, kFirstC = 2;  // stored weight; active channels start at 2

struct Case {
  int64_t H, W, k, s;
  int64_t max_blocks;  // 4096: the default grid; 2: every grid-stride loop goes round
  ofa::emu::Order order;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "H " << c.H << " W " << c.W << " k " << c.k << " stride " << c.s << " max_blocks " << c.max_blocks
      << (c.order == ofa::emu::Order::Reverse ? " reverse order" : " forward order");
}

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  const Case& c = i.param;
  return "H" + std::to_string(c.H) + "W" + std::to_string(c.W) + "k" + std::to_string(c.k) + "s" + std::to_string(c.s) +
         (c.max_blocks < 100 ? "_fewblocks" : "") + (c.order == ofa::emu::Order::Reverse ? "_reverse" : "");
}

// The geometry and the weight view (centre crop of the stored 7x7, channels
// [kFirstC, kFirstC + C)): pointer offset + strides, no copy.
template <class T>
struct Problem {
  cpu::DwGeom g;
  std::vector<T> wfull, x, dy;
  const T* w = nullptr;
  int64_t ws_c = kFullK * kFullK, ws_i = kFullK, ws_j = 1;

  explicit Problem(const Case& c, uint64_t seed) {
    g.N = 2;
    g.C = 13;
    g.H = c.H;
    g.W = c.W;
    g.k = c.k;
    g.stride = c.s;
    g.pad = c.k / 2;
    g.Ho = ofa::kernels::conv_out_size(g.H, g.k, g.stride, g.pad);
    g.Wo = ofa::kernels::conv_out_size(g.W, g.k, g.stride, g.pad);
    wfull = random_vec<T>(kFullC * kFullK * kFullK, seed);
    x = random_vec<T>(g.N * g.H * g.W * g.C, seed + 1);
    dy = random_vec<T>(g.N * g.Ho * g.Wo * g.C, seed + 2);
    const int64_t off = (kFullK - g.k) / 2;
    w = wfull.data() + kFirstC * ws_c + off * ws_i + off * ws_j;
  }
  size_t out_elems() const { return size_t(g.N * g.Ho * g.Wo * g.C); }
  size_t in_elems() const { return size_t(g.N * g.H * g.W * g.C); }
};

class DepthwiseEmulated : public ::testing::TestWithParam<Case> {
 protected:
  EmuSettings settings_{GetParam().max_blocks, GetParam().order};

  template <class T>
  void forward() {
    const Case& c = GetParam();
    Problem<T> p(c, 11 + c.k * 10 + c.s);
    std::vector<T> want(p.out_elems()), got(p.out_elems());
    cpu::depthwise_forward(p.g, p.x.data(), p.w, p.ws_c, p.ws_i, p.ws_j, want.data());
    poison(got);
    be().depthwise_forward(dtype_of<T>(), p.g, p.x.data(), p.w, p.ws_c, p.ws_i, p.ws_j, got.data(), nullptr);
    EXPECT_TRUE(all_near(got, want, tol<T>()));
  }
  template <class T>
  void backward_input() {
    const Case& c = GetParam();
    Problem<T> p(c, 21 + c.k * 10 + c.s);
    std::vector<T> want(p.in_elems()), got(p.in_elems());
    cpu::depthwise_backward_input(p.g, p.dy.data(), p.w, p.ws_c, p.ws_i, p.ws_j, want.data());
    poison(got);
    be().depthwise_backward_input(dtype_of<T>(), p.g, p.dy.data(), p.w, p.ws_c, p.ws_i, p.ws_j, got.data(), nullptr);
    EXPECT_TRUE(all_near(got, want, tol<T>()));
  }
  template <class T>
  void backward_weight() {
    const Case& c = GetParam();
    Problem<T> p(c, 31 + c.k * 10 + c.s);
    const size_t n = size_t(p.g.C * p.g.k * p.g.k);
    std::vector<T> want(n), got(n);
    cpu::depthwise_backward_weight(p.g, p.x.data(), p.dy.data(), want.data());
    poison(got);
    HostScratch ws;  // poisoned
    be().depthwise_backward_weight(dtype_of<T>(), p.g, p.x.data(), p.dy.data(), got.data(), ws, nullptr);
    EXPECT_EQ(ws.calls(), 1u);
    EXPECT_TRUE(all_near(got, want, tol<T>()));
  }
};

TEST_P(DepthwiseEmulated, ForwardFloat) { forward<float>(); }
TEST_P(DepthwiseEmulated, ForwardDouble) { forward<double>(); }
TEST_P(DepthwiseEmulated, BackwardInputFloat) { backward_input<float>(); }
TEST_P(DepthwiseEmulated, BackwardInputDouble) { backward_input<double>(); }
TEST_P(DepthwiseEmulated, BackwardWeightFloat) { backward_weight<float>(); }
TEST_P(DepthwiseEmulated, BackwardWeightDouble) { backward_weight<double>(); }

std::vector<Case> cases() {
  std::vector<Case> v;
  for (auto hw : {std::pair<int64_t, int64_t>{7, 9}, {8, 8}})
    for (int64_t k : {3, 5, 7})
      for (int64_t s : {1, 2}) {
        v.push_back({hw.first, hw.second, k, s, 4096, ofa::emu::Order::Forward});
        v.push_back({hw.first, hw.second, k, s, 2, ofa::emu::Order::Reverse});
      }
  return v;
}
INSTANTIATE_TEST_SUITE_P(Grid, DepthwiseEmulated, ::testing::ValuesIn(cases()), case_name);

// More channels than one tile and more pixels than one partition: several
// channel tiles per block, several partitions summed by the second kernel.
TEST(DepthwiseEmulatedLarge, ManyChannelTilesAndPartitions) {
  cpu::DwGeom g;
  g.N = 3;
  g.C = 70;
  g.H = 23;
  g.W = 17;
  g.k = 5;
  g.stride = 1;
  g.pad = 2;
  g.Ho = 23;
  g.Wo = 17;
  auto w = random_vec<float>(size_t(g.C * 25), 5), x = random_vec<float>(size_t(g.N * g.H * g.W * g.C), 6),
       dy = random_vec<float>(size_t(g.N * g.Ho * g.Wo * g.C), 7);
  std::vector<float> y(dy.size()), y_ref(dy.size()), dx(x.size()), dx_ref(x.size()), dw(w.size()), dw_ref(w.size());
  HostScratch ws;
  cpu::depthwise_forward(g, x.data(), w.data(), 25, 5, 1, y_ref.data());
  cpu::depthwise_backward_input(g, dy.data(), w.data(), 25, 5, 1, dx_ref.data());
  cpu::depthwise_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  poison(y);
  poison(dx);
  poison(dw);
  be().depthwise_forward(DType::F32, g, x.data(), w.data(), 25, 5, 1, y.data(), nullptr);
  be().depthwise_backward_input(DType::F32, g, dy.data(), w.data(), 25, 5, 1, dx.data(), nullptr);
  be().depthwise_backward_weight(DType::F32, g, x.data(), dy.data(), dw.data(), ws, nullptr);
  EXPECT_TRUE(all_near(y, y_ref, 1e-5));
  EXPECT_TRUE(all_near(dx, dx_ref, 1e-5));
  EXPECT_TRUE(all_near(dw, dw_ref, 1e-5));
}

// The weight gradient does not depend on how blocks are scheduled: bit for
// bit the same with 1 or 4 OS threads, forward or reverse thread order, and
// a small or the default grid.
TEST(DepthwiseEmulatedLarge, WeightGradientIsDeterministic) {
  cpu::DwGeom g;
  g.N = 2;
  g.C = 41;
  g.H = 15;
  g.W = 13;
  g.k = 3;
  g.stride = 2;
  g.pad = 1;
  g.Ho = ofa::kernels::conv_out_size(g.H, 3, 2, 1);
  g.Wo = ofa::kernels::conv_out_size(g.W, 3, 2, 1);
  auto x = random_vec<float>(size_t(g.N * g.H * g.W * g.C), 8),
       dy = random_vec<float>(size_t(g.N * g.Ho * g.Wo * g.C), 9);
  HostScratch ws;
  std::vector<float> ref(size_t(g.C * 9));
  {
    EmuSettings one(0, ofa::emu::Order::Forward, 1);
    be().depthwise_backward_weight(DType::F32, g, x.data(), dy.data(), ref.data(), ws, nullptr);
  }
  for (int workers : {4, 2})
    for (auto order : {ofa::emu::Order::Reverse, ofa::emu::Order::Forward})
      for (int64_t mb : {int64_t(3), int64_t(4096)}) {
        EmuSettings set(mb, order, workers);
        std::vector<float> got(ref.size());
        poison(got);
        be().depthwise_backward_weight(DType::F32, g, x.data(), dy.data(), got.data(), ws, nullptr);
        EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)))
            << workers << " workers, max_blocks " << mb;
      }
}

TEST(DepthwiseEmulatedLarge, EmptyBatchWritesZeroWeightGradient) {
  cpu::DwGeom g;
  g.N = 0;
  g.C = 5;
  g.H = 7;
  g.W = 7;
  g.k = 7;
  g.stride = 1;
  g.pad = 3;
  g.Ho = 7;
  g.Wo = 7;
  HostScratch ws;
  std::vector<float> dw(size_t(5 * 49));
  poison(dw);
  be().depthwise_backward_weight(DType::F32, g, nullptr, nullptr, dw.data(), ws, nullptr);
  for (float v : dw) EXPECT_EQ(v, 0.f);
}

TEST(DepthwiseEmulatedLarge, ClearErrors) {
  cpu::DwGeom g;
  g.N = 1;
  g.C = 3;
  g.H = 5;
  g.W = 5;
  g.k = 4;
  g.stride = 1;
  g.pad = 2;
  g.Ho = 6;
  g.Wo = 6;
  std::vector<float> buf(1000);
  const std::string m =
      emu_error_of([&] { be().depthwise_forward(DType::F32, g, buf.data(), buf.data(), 16, 4, 1, buf.data(), nullptr); });
  EXPECT_NE(m.find("k = 3, 5, 7, got k = 4"), std::string::npos) << m;
  g.k = 3;
  g.pad = 1;
  g.Ho = 5;
  g.Wo = 5;
  const std::string m2 = emu_error_of(
      [&] { be().depthwise_forward(DType::I64, g, buf.data(), buf.data(), 9, 3, 1, buf.data(), nullptr); });
  EXPECT_NE(m2.find("depthwise_forward (CUDA): dtype int64 is not supported"), std::string::npos) << m2;
}

}  // namespace
