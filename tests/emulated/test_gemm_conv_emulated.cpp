// The CUDA GEMM and convolution code (kernels/cuda/gemm.cu, conv2d.cu,
// compiled as C++ against the emulation, where cuBLAS and cuDNN are
// reference loops of their documented column-major / NHWC semantics on the
// arguments our code maps onto them) against the CPU kernels: every
// transpose combination of strided views, batches, beta 0 over NaN, K = 0,
// size-1 dims; sum_rows (bitwise: same partition and double sums as the
// CPU) and fill_rows; convolutions pointwise (one GEMM) and general (cuDNN
// path), grouped, non-square kernels and strides, the weight as a slice of
// a larger weight, a transposed view and a view BLAS cannot read. Outputs
// poisoned; hand-written kernels on the default grid and on a 3-block grid
// in reverse thread order.
//
// Tolerances: the GEMM and convolution references sum in a different order
// than OpenBLAS / the CPU's im2col, so 1e-5 (float) / 1e-12 (double)
// relative to 1 + |value| (sums of at most a few hundred products of
// values in [-1, 1]).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/common/conv_math.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
namespace k = ofa::kernels;
using ofa::DType;
using namespace ofa_emu_test;
using MatArg = k::CudaBackend::MatArg;

struct Grid {
  int64_t max_blocks;
  ofa::emu::Order order;
};
void PrintTo(const Grid& g, std::ostream* os) {
  *os << "max_blocks " << g.max_blocks << (g.order == ofa::emu::Order::Reverse ? ", reverse order" : ", forward order");
}
std::string grid_name(const ::testing::TestParamInfo<Grid>& i) {
  return i.param.max_blocks > 0 ? "fewblocks_reverse" : "default";
}

// A [rows, cols] matrix stored row-major (trans = false) or column-major
// (trans = true) with a padded leading dimension, at an offset in its buffer.
template <class T>
struct View {
  std::vector<T> buf;
  const T* p;
  int64_t rows, cols, rs, cs;
  View(int64_t r, int64_t c, bool trans, uint64_t seed) : rows(r), cols(c) {
    const int64_t ld = (trans ? r : c) + 3;
    buf = random_vec<T>(size_t(ld * (trans ? c : r) + 2), seed);
    p = buf.data() + 2;
    rs = trans ? 1 : ld;
    cs = trans ? ld : 1;
  }
  cpu::MatRef<T> ref() const { return {p, rows, cols, rs, cs}; }
  MatArg arg(int64_t bs = 0) const { return {p, rows, cols, rs, cs, bs}; }
};

class GemmEmulated : public ::testing::TestWithParam<Grid> {
 protected:
  EmuSettings settings_{GetParam().max_blocks, GetParam().order};

  // C [M, N] inside ldc = N + 2 columns: the gap columns keep their values.
  template <class T>
  void layouts(int64_t M, int64_t K, int64_t N, double beta) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        View<T> A(M, K, ta, 1), B(K, N, tb, 2);
        const int64_t ldc = N + 2;
        std::vector<T> c0 = random_vec<T>(size_t(M * ldc), 3);
        if (beta == 0)
          for (size_t i = 0; i < c0.size(); i += 3) c0[i] = std::numeric_limits<T>::quiet_NaN();
        std::vector<T> want = c0, got = c0;
        cpu::gemm<T>(A.ref(), B.ref(), T(0.75), T(beta), want.data(), ldc);
        be().gemm(dtype_of<T>(), A.arg(), B.arg(), 0.75, beta, got.data(), ldc, 0, 1, nullptr);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = N; j < ldc; ++j) {
            EXPECT_EQ(std::memcmp(&got[i * ldc + j], &c0[i * ldc + j], sizeof(T)), 0) << "gap touched";
            got[i * ldc + j] = want[i * ldc + j] = T(0);
          }
        EXPECT_TRUE(all_near(got, want, tol<T>())) << "M " << M << " K " << K << " N " << N << " A "
                                                   << (ta ? "T" : "N") << " B " << (tb ? "T" : "N") << " beta "
                                                   << beta;
      }
  }
};

TEST_P(GemmEmulated, LayoutsFloat) {
  layouts<float>(7, 33, 5, 0.5);
  layouts<float>(7, 33, 5, 0.0);  // NaN in C ignored
  layouts<float>(1, 9, 1, 0.5);   // size-1 dims: their strides are ignored
}
TEST_P(GemmEmulated, LayoutsDouble) {
  layouts<double>(13, 4, 17, 1.0);
  layouts<double>(3, 1, 8, 0.0);
}

// Three batches of A^T B with batch strides, against three CPU calls;
// B shared by the batches (batch stride 0).
TEST_P(GemmEmulated, Batched) {
  const int64_t M = 6, K = 11, N = 9, batch = 3, a_bs = M * K + 5, c_bs = M * N + 4;
  auto abuf = random_vec<double>(size_t(a_bs * batch), 4);
  View<double> B(K, N, false, 5);
  std::vector<double> want(size_t(c_bs * batch)), got;
  poison(want);
  got = want;
  for (int64_t b = 0; b < batch; ++b) {
    // A_b stored as [K, M] row-major: its transpose view is [M, K] with rs 1, cs M.
    cpu::gemm<double>({abuf.data() + b * a_bs, M, K, 1, M}, B.ref(), 1.0, 0.0, want.data() + b * c_bs, N);
  }
  be().gemm(DType::F64, {abuf.data(), M, K, 1, M, a_bs}, B.arg(0), 1.0, 0.0, got.data(), N, c_bs, batch, nullptr);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t e = M * N; e < c_bs; ++e) {
      EXPECT_TRUE(std::isnan(got[b * c_bs + e])) << "between batches";
      got[b * c_bs + e] = want[b * c_bs + e] = 0;
    }
  EXPECT_TRUE(all_near(got, want, 1e-12));
}

// K == 0: C = beta C, and zeros over NaN for beta == 0 (the hand-written kernel).
TEST_P(GemmEmulated, EmptyInnerDimension) {
  std::vector<float> c = random_vec<float>(4 * 5, 6), c0 = c;
  be().gemm(DType::F32, {nullptr, 4, 0, 0, 1, 0}, {nullptr, 0, 5, 5, 1, 0}, 1.0, 2.0, c.data(), 5, 0, 1, nullptr);
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], 2.f * c0[i]);
  poison(c);
  be().gemm(DType::F32, {nullptr, 4, 0, 0, 1, 0}, {nullptr, 0, 5, 5, 1, 0}, 1.0, 0.0, c.data(), 5, 0, 1, nullptr);
  for (float v : c) EXPECT_EQ(v, 0.f);
}

// The bias gradient: the CPU's row blocks and double sums, so bitwise; 70000
// rows make blocks of 274 rows (more than the minimum 256).
TEST_P(GemmEmulated, SumRows) {
  for (int64_t rows : {int64_t(0), int64_t(1), int64_t(300), int64_t(70000)}) {
    const int64_t cols = 5, lda = 7;
    auto a = random_vec<float>(size_t(std::max<int64_t>(rows, 1) * lda), 7);
    std::vector<float> want(cols * 2), got(cols * 2);
    poison(want);
    poison(got);
    cpu::sum_rows(a.data(), rows, cols, lda, want.data(), 2);
    HostScratch scratch;
    be().sum_rows(DType::F32, a.data(), rows, cols, lda, got.data(), 2, scratch, nullptr);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << rows << " rows";
  }
  auto a = random_vec<double>(size_t(33 * 3), 8);
  std::vector<double> want(3), got(3);
  cpu::sum_rows(a.data(), 33, 3, 3, want.data(), 1);
  poison(got);
  HostScratch scratch;
  be().sum_rows(DType::F64, a.data(), 33, 3, 3, got.data(), 1, scratch, nullptr);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(double)), 0);
}

TEST_P(GemmEmulated, FillRows) {
  auto v = random_vec<double>(3 * 7, 9);
  std::vector<double> want(5 * 9), got(5 * 9);
  poison(want);
  poison(got);
  cpu::fill_rows(want.data(), 5, 7, 9, v.data(), 3);
  be().fill_rows(DType::F64, got.data(), 5, 7, 9, v.data(), 3, nullptr);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(double)), 0);  // NaN gaps compare as bits
}

INSTANTIATE_TEST_SUITE_P(Grid, GemmEmulated,
                         ::testing::Values(Grid{0, ofa::emu::Order::Forward}, Grid{3, ofa::emu::Order::Reverse}),
                         grid_name);

TEST(GemmEmulatedEdges, DeterministicSumRows) {
  const int64_t rows = 5000, cols = 37;
  auto a = random_vec<float>(size_t(rows * cols), 10);
  std::vector<float> ref(cols);
  HostScratch scratch;
  be().sum_rows(DType::F32, a.data(), rows, cols, cols, ref.data(), 1, scratch, nullptr);
  for (int workers : {1, 4})
    for (auto order : {ofa::emu::Order::Reverse, ofa::emu::Order::Forward})
      for (int64_t mb : {int64_t(1), int64_t(3), int64_t(4096)}) {
        EmuSettings set(mb, order, workers);
        std::vector<float> got(cols);
        poison(got);
        be().sum_rows(DType::F32, a.data(), rows, cols, cols, got.data(), 1, scratch, nullptr);
        EXPECT_EQ(std::memcmp(got.data(), ref.data(), cols * sizeof(float)), 0) << workers << " workers, " << mb;
      }
}

TEST(GemmEmulatedEdges, NotBlasReadyIsRejected) {
  std::vector<float> buf(200), c(20);
  // A [4, 5] with strides (10, 2): no unit stride.
  const std::string m = emu_error_of([&] {
    be().gemm(DType::F32, {buf.data(), 4, 5, 10, 2, 0}, {buf.data(), 5, 5, 5, 1, 0}, 1, 0, c.data(), 5, 0, 1, nullptr);
  });
  EXPECT_NE(m.find("gemm (CUDA): A [4, 5] with strides (10, 2) is not BLAS-compatible"), std::string::npos) << m;
  // B [5, 5] with row stride 3 < 5 columns: rows overlap.
  const std::string m2 = emu_error_of([&] {
    be().gemm(DType::F32, {buf.data(), 4, 5, 5, 1, 0}, {buf.data(), 5, 5, 3, 1, 0}, 1, 0, c.data(), 5, 0, 1, nullptr);
  });
  EXPECT_NE(m2.find("gemm (CUDA): B [5, 5] with strides (3, 1) is not BLAS-compatible"), std::string::npos) << m2;
  const std::string m3 = emu_error_of([&] {
    be().gemm(DType::F32, {buf.data(), 4, 5, 5, 1, 0}, {buf.data(), 4, 5, 5, 1, 0}, 1, 0, c.data(), 5, 0, 1, nullptr);
  });
  EXPECT_NE(m3.find("gemm (CUDA): inner sizes differ"), std::string::npos) << m3;
}

// ---------------------------------------------------------------- convolution

enum class WeightView { Dense, Slice, Transposed, Gappy };

struct ConvCase {
  const char* name;
  int64_t N, H, W, Cin, Cout, kh, kw, sh, sw, ph, pw, groups;
  WeightView view;
  bool bias;
  Grid grid;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

std::string conv_name(const ::testing::TestParamInfo<ConvCase>& i) {
  return std::string(i.param.name) + (i.param.grid.max_blocks > 0 ? "_fewblocks_reverse" : "");
}

template <class T>
struct ConvProblem {
  cpu::Conv2dGeom g;
  std::vector<T> wbuf, wdense, x, dy, bbuf;
  const T* w = nullptr;
  int64_t w_rs = 0, w_cs = 0;

  ConvProblem(const ConvCase& c, uint64_t seed) {
    g.N = c.N;
    g.H = c.H;
    g.W = c.W;
    g.Cin = c.Cin;
    g.Cout = c.Cout;
    g.kh = c.kh;
    g.kw = c.kw;
    g.sh = c.sh;
    g.sw = c.sw;
    g.ph = c.ph;
    g.pw = c.pw;
    g.groups = c.groups;
    g.Ho = k::conv_out_size(g.H, g.kh, g.sh, g.ph);
    g.Wo = k::conv_out_size(g.W, g.kw, g.sw, g.pw);
    const int64_t K = g.k_g(), khw = g.kh * g.kw, cg = g.cin_g();
    int64_t off = 0;
    switch (c.view) {
      case WeightView::Dense:
        wbuf = random_vec<T>(size_t(g.Cout * K), seed);
        w_rs = K;
        w_cs = 1;
        break;
      case WeightView::Slice:  // output channels [1, 1 + Cout), input channels [0, cg) of [Cout + 2, cg + 1, kh, kw]
        wbuf = random_vec<T>(size_t((g.Cout + 2) * (cg + 1) * khw), seed);
        w_rs = (cg + 1) * khw;
        w_cs = 1;
        off = w_rs;
        break;
      case WeightView::Transposed:  // stored [K, Cout + 1], columns from 1
        wbuf = random_vec<T>(size_t(K * (g.Cout + 1)), seed);
        w_rs = 1;
        w_cs = g.Cout + 1;
        off = 1;
        break;
      case WeightView::Gappy:  // every other element: BLAS cannot read it
        wbuf = random_vec<T>(size_t(g.Cout * (2 * K + 1)), seed);
        w_rs = 2 * K + 1;
        w_cs = 2;
        break;
    }
    w = wbuf.data() + off;
    wdense.resize(size_t(g.Cout * K));
    for (int64_t o = 0; o < g.Cout; ++o)
      for (int64_t q = 0; q < K; ++q) wdense[o * K + q] = w[o * w_rs + q * w_cs];
    x = random_vec<T>(size_t(g.N * g.H * g.W * g.Cin), seed + 1);
    dy = random_vec<T>(size_t(g.N * g.Ho * g.Wo * g.Cout), seed + 2);
    bbuf = random_vec<T>(size_t(2 * g.Cout), seed + 3);
  }
};

class ConvEmulated : public ::testing::TestWithParam<ConvCase> {
 protected:
  EmuSettings settings_{GetParam().grid.max_blocks, GetParam().grid.order};

  template <class T>
  void run() {
    const ConvCase& c = GetParam();
    ConvProblem<T> p(c, 40);
    const cpu::Conv2dGeom& g = p.g;
    const bool blas_view = c.view != WeightView::Gappy;  // the CPU kernel needs a BLAS-compatible view
    const T* wc = blas_view ? p.w : p.wdense.data();
    const int64_t rs = blas_view ? p.w_rs : g.k_g(), cs = blas_view ? p.w_cs : 1;
    const T* bias = c.bias ? p.bbuf.data() : nullptr;

    std::vector<T> y_ref(p.dy.size()), y(p.dy.size());
    cpu::conv2d_forward(g, p.x.data(), wc, rs, cs, bias, 2, y_ref.data());
    poison(y);
    HostScratch s1;
    be().conv2d_forward(dtype_of<T>(), g, p.x.data(), p.w, p.w_rs, p.w_cs, bias, 2, y.data(), s1, nullptr);
    EXPECT_TRUE(all_near(y, y_ref, tol<T>())) << "forward";

    std::vector<T> dx_ref(p.x.size()), dx(p.x.size());
    cpu::conv2d_backward_input(g, p.dy.data(), wc, rs, cs, dx_ref.data());
    poison(dx);
    HostScratch s2;
    be().conv2d_backward_input(dtype_of<T>(), g, p.dy.data(), p.w, p.w_rs, p.w_cs, dx.data(), s2, nullptr);
    EXPECT_TRUE(all_near(dx, dx_ref, tol<T>())) << "backward input";

    std::vector<T> dw_ref(p.wdense.size()), dw(p.wdense.size());
    cpu::conv2d_backward_weight(g, p.x.data(), p.dy.data(), dw_ref.data());
    poison(dw);
    HostScratch s3;
    be().conv2d_backward_weight(dtype_of<T>(), g, p.x.data(), p.dy.data(), dw.data(), s3, nullptr);
    EXPECT_TRUE(all_near(dw, dw_ref, tol<T>())) << "backward weight";

    // The weight is copied only where it must be: a view BLAS cannot read,
    // or a cuDNN filter whose KRSC order differs from the view.
    const bool krsc_same = g.cin_g() == 1 || g.kh * g.kw == 1;
    const bool repack = g.pointwise() ? c.view == WeightView::Gappy : !(krsc_same && c.view == WeightView::Dense);
    EXPECT_EQ(s1.calls(), repack ? 1u : 0u) << "forward scratch";
    EXPECT_EQ(s2.calls(), repack ? 1u : 0u) << "backward input scratch";
    EXPECT_EQ(s3.calls(), !g.pointwise() && !krsc_same ? 1u : 0u) << "backward weight scratch";
  }
};

TEST_P(ConvEmulated, Float) { run<float>(); }
TEST_P(ConvEmulated, Double) { run<double>(); }

std::vector<ConvCase> conv_cases() {
  using V = WeightView;
  const Grid def{0, ofa::emu::Order::Forward};
  std::vector<ConvCase> base{
      {"pointwise_slice_bias", 2, 5, 3, 7, 5, 1, 1, 1, 1, 0, 0, 1, V::Slice, true, def},
      {"pointwise_transposed", 1, 3, 3, 6, 4, 1, 1, 1, 1, 0, 0, 1, V::Transposed, false, def},
      {"pointwise_groups2_gappy", 2, 3, 2, 6, 4, 1, 1, 1, 1, 0, 0, 2, V::Gappy, true, def},
      {"k3_s1_dense_bias", 2, 6, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, V::Dense, true, def},
      {"k3_s2_groups3_slice", 1, 7, 6, 6, 9, 3, 3, 2, 2, 1, 1, 3, V::Slice, false, def},
      {"k5x3_s2x1_transposed", 2, 7, 4, 4, 3, 5, 3, 2, 1, 2, 0, 1, V::Transposed, true, def},
      {"depthwise_dense", 1, 5, 5, 4, 4, 3, 3, 1, 1, 1, 1, 4, V::Dense, false, def},
      {"k1_s2_gappy", 2, 5, 5, 3, 4, 1, 1, 2, 2, 0, 0, 1, V::Gappy, false, def},
      {"k3_large_channels", 1, 4, 4, 40, 3, 3, 3, 1, 1, 1, 1, 1, V::Dense, false, def},
      // More pixels (2 x 13 x 11 = 286) than a block has threads: the weight
      // gradient's per-thread strides and tree sum cover every one.
      {"k3_many_pixels_groups2", 2, 13, 11, 4, 6, 3, 3, 1, 1, 1, 1, 2, V::Dense, true, def},
  };
  std::vector<ConvCase> v = base;
  for (ConvCase c : base) {
    c.grid = {3, ofa::emu::Order::Reverse};
    v.push_back(c);
  }
  return v;
}
INSTANTIATE_TEST_SUITE_P(Geometries, ConvEmulated, ::testing::ValuesIn(conv_cases()), conv_name);

// A square geometry of the edge tests (stride 1, one group), output size
// from the input as check_geom expects it.
cpu::Conv2dGeom square_geom(int64_t n, int64_t hw, int64_t cin, int64_t cout, int64_t k, int64_t pad) {
  cpu::Conv2dGeom g;
  g.N = n;
  g.H = g.W = hw;
  g.Cin = cin;
  g.Cout = cout;
  g.kh = g.kw = k;
  g.ph = g.pw = pad;
  g.Ho = g.Wo = hw + 2 * pad - k + 1;
  return g;
}

// An empty batch: nothing written forward, zero weight gradient.
TEST(ConvEmulatedEdges, EmptyBatch) {
  const cpu::Conv2dGeom g = square_geom(0, 4, 3, 2, 3, 1);
  std::vector<float> dw(2 * 27);
  poison(dw);
  HostScratch s;
  be().conv2d_backward_weight(DType::F32, g, nullptr, nullptr, dw.data(), s, nullptr);
  for (float v : dw) EXPECT_EQ(v, 0.f);
  be().conv2d_forward(DType::F32, g, nullptr, nullptr, 27, 1, nullptr, 1, nullptr, s, nullptr);
}

// An empty output (a 3x3 kernel on a 2x2 input, no padding): the input
// gradient is zero, written before any weight repack or library call, so
// neither dy nor w is read (cuDNN would refuse the empty descriptor).
TEST(ConvEmulatedEdges, EmptyOutputGivesAZeroInputGradient) {
  const cpu::Conv2dGeom g = square_geom(2, 2, 3, 4, 3, 0);
  ASSERT_EQ(g.Ho, 0);
  std::vector<float> dx(2 * 2 * 2 * 3);
  poison(dx);
  HostScratch s;
  be().conv2d_backward_input(DType::F32, g, nullptr, nullptr, 27, 1, dx.data(), s, nullptr);
  for (float v : dx) EXPECT_EQ(v, 0.f);
}

TEST(ConvEmulatedEdges, ClearErrors) {
  cpu::Conv2dGeom g = square_geom(1, 4, 3, 4, 3, 1);
  g.groups = 2;
  HostScratch s;
  const std::string m = emu_error_of(
      [&] { be().conv2d_forward(DType::F32, g, nullptr, nullptr, 9, 1, nullptr, 1, nullptr, s, nullptr); });
  EXPECT_NE(m.find("conv2d_forward (CUDA): 2 groups do not divide Cin 3"), std::string::npos) << m;
  g.groups = 1;
  g.Ho = 5;
  const std::string m2 = emu_error_of(
      [&] { be().conv2d_backward_input(DType::F32, g, nullptr, nullptr, 27, 1, nullptr, s, nullptr); });
  EXPECT_NE(m2.find("conv2d_backward_input (CUDA): output 5x4 does not match"), std::string::npos) << m2;
}

}  // namespace
