// conv2d: forward and backward against naive loops over a grid of kernel
// sizes, strides, paddings and groups; weight views; layouts; errors.
#include <omp.h>

#include <functional>
#include <string>
#include <tuple>
#include <utility>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

struct Geo {
  int64_t N, Cin, H, W, Cout, kh, kw, sh, sw, ph, pw, G;
  int64_t Ho() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t Wo() const { return (W + 2 * pw - kw) / sw + 1; }
};

// The 7-loop definition, on row-major NCHW / OIHW vectors.
std::vector<double> conv_ref(const Geo& g, const std::vector<double>& x, const std::vector<double>& w,
                             const std::vector<double>& b) {
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cg = g.Cin / g.G, og = g.Cout / g.G;
  std::vector<double> y(g.N * g.Cout * Ho * Wo, 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.Cout; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = b.empty() ? 0.0 : b[o];
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t c = (o / og) * cg + ci;
                s += x[((n * g.Cin + c) * g.H + ih) * g.W + iw] * w[((o * cg + ci) * g.kh + i) * g.kw + j];
              }
          y[((n * g.Cout + o) * Ho + oh) * Wo + ow] = s;
        }
  return y;
}

// Gradients of L = sum(y * R) by the same loops (the adjoint of conv_ref).
void conv_ref_backward(const Geo& g, const std::vector<double>& x, const std::vector<double>& w,
                       const std::vector<double>& R, std::vector<double>& dx, std::vector<double>& dw,
                       std::vector<double>& db) {
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cg = g.Cin / g.G, og = g.Cout / g.G;
  dx.assign(x.size(), 0.0);
  dw.assign(w.size(), 0.0);
  db.assign(g.Cout, 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.Cout; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const double r = R[((n * g.Cout + o) * Ho + oh) * Wo + ow];
          db[o] += r;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t c = (o / og) * cg + ci;
                const int64_t xi = ((n * g.Cin + c) * g.H + ih) * g.W + iw, wi = ((o * cg + ci) * g.kh + i) * g.kw + j;
                dx[xi] += r * w[wi];
                dw[wi] += r * x[xi];
              }
        }
}

Conv2dArgs args_of(const Geo& g) {
  Conv2dArgs a;
  a.stride = {g.sh, g.sw};
  a.padding = {g.ph, g.pw};
  a.groups = g.G;
  return a;
}

// (k, stride, padding, groups, (H, W))
using GridParam = std::tuple<int, int, int, int, std::pair<int, int>>;

class Conv2dGrid : public ::testing::TestWithParam<GridParam> {
 protected:
  Geo geo() const {
    auto [k, s, p, G, hw] = GetParam();
    const int64_t H = hw.first, W = hw.second;
    // Cin 13 for groups 1, else 26 (divisible by 2 and 13); Cout divisible by G.
    const int64_t Cin = G == 1 ? 13 : 26, Cout = G == 13 ? 26 : (G == 2 ? 6 : 7);
    return {3, Cin, H, W, Cout, k, k, s, s, p, p, G};
  }
};

TEST_P(Conv2dGrid, ForwardMatchesNaiveFloat32AndFloat64) {
  const Geo g = geo();
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = randn_t({g.N, g.Cin, g.H, g.W}, 1, dt), w = randn_t({g.Cout, g.Cin / g.G, g.kh, g.kw}, 2, dt),
           b = randn_t({g.Cout}, 3, dt);
    Tensor y = conv2d(x.contiguous(MemoryFormat::ChannelsLast), w, b, args_of(g));
    ASSERT_EQ(y.shape(), (Shape{g.N, g.Cout, g.Ho(), g.Wo()}));
    EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast) || y.size(1) == 1);
    std::vector<double> want = conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>());
    const double tol = dt == DType::F32 ? 1e-4 : 1e-12;
    EXPECT_TRUE(all_close(y, want, tol, tol)) << dtype_name(dt);
  }
}

TEST_P(Conv2dGrid, BackwardMatchesNaiveFloat64) {
  const Geo g = geo();
  Tensor x = randn_t({g.N, g.Cin, g.H, g.W}, 4).set_requires_grad(true);
  Tensor w = randn_t({g.Cout, g.Cin / g.G, g.kh, g.kw}, 5).set_requires_grad(true);
  Tensor b = randn_t({g.Cout}, 6).set_requires_grad(true);
  Tensor y = conv2d(x, w, b, args_of(g));
  Tensor R = randn_t(y.shape(), 7);
  sum(mul(y, R)).backward();
  std::vector<double> dx, dw, db;
  conv_ref_backward(g, x.to_vector<double>(), w.to_vector<double>(), R.to_vector<double>(), dx, dw, db);
  EXPECT_TRUE(all_close(x.grad(), dx, 1e-11, 1e-11));
  EXPECT_TRUE(all_close(w.grad(), dw, 1e-11, 1e-11));
  EXPECT_TRUE(all_close(b.grad(), db, 1e-11, 1e-11));
}

std::string grid_name(const ::testing::TestParamInfo<GridParam>& info) {
  auto [k, s, p, G, hw] = info.param;
  const int H = hw.first, W = hw.second;
  return "k" + std::to_string(k) + "_s" + std::to_string(s) + "_p" + std::to_string(p) + "_g" + std::to_string(G) +
         "_" + std::to_string(H) + "x" + std::to_string(W);
}

INSTANTIATE_TEST_SUITE_P(Grid, Conv2dGrid,
                         ::testing::Combine(::testing::Values(1, 3, 5), ::testing::Values(1, 2),
                                            ::testing::Values(0, 1, 2), ::testing::Values(1, 2, 13),
                                            ::testing::Values(std::make_pair(7, 7), std::make_pair(8, 5))),
                         grid_name);

TEST(Conv2d, NonSquareKernelStrideAndPadding) {
  const Geo g{3, 4, 8, 7, 5, 3, 1, 2, 1, 1, 0, 1};
  Tensor x = randn_t({g.N, g.Cin, g.H, g.W}, 8), w = randn_t({g.Cout, g.Cin, g.kh, g.kw}, 9);
  Conv2dArgs a;
  a.stride = {2, 1};
  a.padding = {1, 0};
  Tensor y = conv2d(x, w, Tensor(), a);
  EXPECT_TRUE(all_close(y, conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), {}), 1e-12, 1e-12));
}

TEST(Conv2d, PointwiseOnLeadingSliceEqualsCopiedWeight) {
  // The 1x1 fast path reads a [12, 13] slice of a [20, 30, 1, 1] weight with lda 30.
  Tensor w_full = randn_t({20, 30, 1, 1}, 10, DType::F32);
  Tensor w = w_full.narrow(0, 0, 12).narrow(1, 0, 13);
  ASSERT_EQ(w.stride(0), 30);
  Tensor x = randn_t({3, 13, 7, 7}, 11, DType::F32).contiguous(MemoryFormat::ChannelsLast);
  Tensor b_full = randn_t({20}, 12, DType::F32);
  Tensor b = b_full.narrow(0, 0, 12);
  Tensor y_view = conv2d(x, w, b, {});
  Tensor y_copy = conv2d(x, w.contiguous(), b.contiguous(), {});
  EXPECT_TRUE(all_close(y_view, y_copy, 1e-5, 1e-5));
  const Geo g{3, 13, 7, 7, 12, 1, 1, 1, 1, 0, 0, 1};
  EXPECT_TRUE(all_close(y_view, conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>()),
                        1e-4, 1e-4));
}

TEST(Conv2d, PointwiseGroupedOnLeadingSlice) {
  Tensor w_full = randn_t({10, 9, 1, 1}, 13);
  Tensor w = w_full.narrow(0, 0, 6).narrow(1, 0, 5);  // groups 3: Cin 15 -> Cout 6
  Tensor x = randn_t({3, 15, 5, 4}, 14);
  Conv2dArgs a;
  a.groups = 3;
  const Geo g{3, 15, 5, 4, 6, 1, 1, 1, 1, 0, 0, 3};
  EXPECT_TRUE(all_close(conv2d(x, w, Tensor(), a), conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), {}),
                        1e-12, 1e-12));
}

TEST(Conv2d, KxKOnLeadingSliceOfLargerWeight) {
  Tensor w_full = randn_t({9, 20, 3, 3}, 15);
  Tensor w = w_full.narrow(0, 0, 7).narrow(1, 0, 13);
  Tensor x = randn_t({3, 13, 7, 7}, 16);
  Conv2dArgs a;
  a.stride = {2, 2};
  a.padding = {1, 1};
  const Geo g{3, 13, 7, 7, 7, 3, 3, 2, 2, 1, 1, 1};
  EXPECT_TRUE(all_close(conv2d(x, w, Tensor(), a), conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), {}),
                        1e-12, 1e-12));
}

TEST(Conv2d, OddlyStridedWeightsStillCorrect) {
  // dims 0 and 1 swapped in memory (not flattenable: copied), and a 1x1
  // weight stored transposed (read with the BLAS transpose flag).
  Tensor x = randn_t({3, 6, 5, 5}, 17);
  Tensor wt = randn_t({6, 4, 3, 3}, 18);
  Tensor w = wt.transpose(0, 1);  // [4, 6, 3, 3] with stride(1) = 36
  Conv2dArgs a;
  a.padding = {1, 1};
  Geo g{3, 6, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1};
  EXPECT_TRUE(all_close(conv2d(x, w, Tensor(), a), conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), {}),
                        1e-12, 1e-12));
  Tensor w1t = randn_t({6, 4, 1, 1}, 19);
  Tensor w1 = w1t.transpose(0, 1);  // [4, 6, 1, 1], stride(0) = 1
  g = {3, 6, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1};
  EXPECT_TRUE(all_close(conv2d(x, w1, Tensor(), {}), conv_ref(g, x.to_vector<double>(), w1.to_vector<double>(), {}),
                        1e-12, 1e-12));
}

TEST(Conv2d, ContiguousInputGivesSameResultAsChannelsLast) {
  Tensor x = randn_t({3, 13, 8, 5}, 20, DType::F32), w = randn_t({7, 13, 3, 3}, 21, DType::F32);
  Conv2dArgs a;
  a.stride = {2, 2};
  a.padding = {1, 1};
  ASSERT_TRUE(x.is_contiguous());
  Tensor y1 = conv2d(x, w, Tensor(), a);
  Tensor y2 = conv2d(x.contiguous(MemoryFormat::ChannelsLast), w, Tensor(), a);
  EXPECT_TRUE(y1.is_contiguous(MemoryFormat::ChannelsLast));
  EXPECT_TRUE(all_close(y1, y2, 0, 0));
}

TEST(Conv2d, BatchLargerThanOneIm2colChunk) {
  // 128x128 with K = 72 in float64 makes each image's im2col 9.4 MB, so the
  // batch of 5 is processed in two chunks; forward and both grads must agree.
  const Geo g{5, 8, 128, 128, 4, 3, 3, 1, 1, 1, 1, 1};
  Tensor x = randn_t({g.N, g.Cin, g.H, g.W}, 22).set_requires_grad(true);
  Tensor w = randn_t({g.Cout, g.Cin, 3, 3}, 23).set_requires_grad(true);
  Conv2dArgs a;
  a.padding = {1, 1};
  Tensor y = conv2d(x, w, Tensor(), a);
  EXPECT_TRUE(all_close(y, conv_ref(g, x.to_vector<double>(), w.to_vector<double>(), {}), 1e-11, 1e-11));
  Tensor R = randn_t(y.shape(), 24);
  sum(mul(y, R)).backward();
  std::vector<double> dx, dw, db;
  conv_ref_backward(g, x.to_vector<double>(), w.to_vector<double>(), R.to_vector<double>(), dx, dw, db);
  EXPECT_TRUE(all_close(x.grad(), dx, 1e-11, 1e-11));
  EXPECT_TRUE(all_close(w.grad(), dw, 1e-10, 1e-11));
}

TEST(Conv2d, GradCheckGroupedStridedWithBias) {
  Tensor x = randn_t({2, 4, 5, 5}, 25).set_requires_grad(true);
  Tensor w = randn_t({6, 2, 3, 3}, 26).set_requires_grad(true);
  Tensor b = randn_t({6}, 27).set_requires_grad(true);
  Conv2dArgs a;
  a.stride = {2, 2};
  a.padding = {1, 1};
  a.groups = 2;
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], a); }, {x, w, b}));
}

TEST(Conv2d, GradCheckNonSquare5x5Stride2) {
  Tensor x = randn_t({2, 3, 7, 6}, 28).set_requires_grad(true);
  Tensor w = randn_t({2, 3, 5, 5}, 29).set_requires_grad(true);
  Tensor b = randn_t({2}, 30).set_requires_grad(true);
  Conv2dArgs a;
  a.stride = {2, 2};
  a.padding = {2, 2};
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], a); }, {x, w, b}));
}

TEST(Conv2d, GradCheckPointwiseThroughLeadingSliceOfLeaf) {
  // The weight leaf is the full [6, 7, 1, 1]; the op sees a [4, 5] slice, and
  // the gradient flows back to the leaf through the view (zero outside it).
  Tensor x = randn_t({2, 5, 4, 3}, 31).set_requires_grad(true);
  Tensor w_full = randn_t({6, 7, 1, 1}, 32).set_requires_grad(true);
  Tensor b_full = randn_t({6}, 33).set_requires_grad(true);
  auto f = [](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1].narrow(0, 0, 4).narrow(1, 0, 5), in[2].narrow(0, 0, 4), {});
  };
  EXPECT_TRUE(grad_check(f, {x, w_full, b_full}));
  std::vector<double> gw = w_full.grad().to_vector<double>(), gb = b_full.grad().to_vector<double>();
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t c = 0; c < 7; ++c)
      if (o >= 4 || c >= 5) EXPECT_EQ(gw[o * 7 + c], 0.0) << o << "," << c;
  EXPECT_EQ(gb[4], 0.0);
  EXPECT_EQ(gb[5], 0.0);
}

TEST(Conv2d, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 4, 6, 5}, 34).set_requires_grad(true);
  Tensor w = randn_t({6, 4, 3, 3}, 35).set_requires_grad(true);
  Tensor b = randn_t({6}, 36).set_requires_grad(true);
  Conv2dArgs a;
  a.padding = {1, 1};
  sum(conv2d(x, w, b, a)).backward();
  std::vector<double> gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>(),
                      gb = b.grad().to_vector<double>();
  sum(conv2d(x, w, b, a)).backward();
  for (double& v : gx) v *= 2;
  for (double& v : gw) v *= 2;
  for (double& v : gb) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), gx, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w.grad(), gw, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(b.grad(), gb, 1e-12, 1e-12));
}

TEST(Conv2d, RepeatableAndCloseAcrossThreadCounts) {
  // Large enough that im2col, col2im and the bias sum take their parallel
  // paths. Our loops give the same bits with any thread count, but OpenBLAS
  // (the OpenMP build, sharing our thread pool) may split a GEMM's sums
  // differently with more threads: so bit-identical for the same count,
  // float-close across counts.
  Tensor x = randn_t({3, 16, 20, 20}, 37, DType::F32).set_requires_grad(true);
  Tensor w = randn_t({32, 16, 3, 3}, 38, DType::F32).set_requires_grad(true);
  Tensor b = randn_t({32}, 39, DType::F32).set_requires_grad(true);
  Conv2dArgs a;
  a.padding = {1, 1};
  auto run = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    Tensor y = conv2d(x, w, b, a);
    sum(mul(y, y)).backward();
    omp_set_num_threads(prev);
    return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
  };
  std::vector<Tensor> r1 = run(1), r2 = run(2), r2again = run(2);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(all_close(r2again[i], r2[i], 0, 0)) << i;
    EXPECT_TRUE(all_close(r1[i], r2[i], 1e-3, 1e-5)) << i;
  }
}

TEST(Conv2d, MismatchedChannelsNameTheShapes) {
  std::string m = error_of([] { conv2d(randn_t({2, 5, 7, 7}, 1), randn_t({4, 3, 3, 3}, 2), Tensor(), {}); });
  EXPECT_TRUE(has(m, "conv2d") && has(m, "[2, 5, 7, 7]") && has(m, "[4, 3, 3, 3]")) << m;
}

TEST(Conv2d, GroupsThatDoNotDivideAreRefused) {
  Conv2dArgs a;
  a.groups = 2;
  std::string m = error_of([&] { conv2d(randn_t({2, 6, 7, 7}, 1), randn_t({5, 3, 3, 3}, 2), Tensor(), a); });
  EXPECT_TRUE(has(m, "groups") && has(m, "[5, 3, 3, 3]")) << m;
}

TEST(Conv2d, BadBiasKernelTooLargeAndDtypeMismatchAreRefused) {
  std::string m = error_of([] { conv2d(randn_t({2, 3, 7, 7}, 1), randn_t({4, 3, 3, 3}, 2), randn_t({5}, 3), {}); });
  EXPECT_TRUE(has(m, "bias") && has(m, "[5]") && has(m, "[4, 3, 3, 3]")) << m;
  m = error_of([] { conv2d(randn_t({2, 3, 2, 2}, 1), randn_t({4, 3, 3, 3}, 2), Tensor(), {}); });
  EXPECT_TRUE(has(m, "[2, 3, 2, 2]") && has(m, "smaller than the kernel")) << m;
  m = error_of([] { conv2d(randn_t({2, 3, 7, 7}, 1, DType::F32), randn_t({4, 3, 3, 3}, 2), Tensor(), {}); });
  EXPECT_TRUE(has(m, "float64") && has(m, "float32")) << m;
  m = error_of([] { conv2d(randn_t({3, 7, 7}, 1), randn_t({4, 3, 3, 3}, 2), Tensor(), {}); });
  EXPECT_TRUE(has(m, "4-D") && has(m, "[3, 7, 7]")) << m;
}

}  // namespace
