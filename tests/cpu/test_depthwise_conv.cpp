// depthwise_conv2d: forward and backward against naive loops for k 3/5/7,
// stride 1/2 and odd sizes, reading the centre crop of a stored 7x7 weight
// and a channel slice through strides; gradients reach the full 7x7 leaf.
#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <tuple>
#include <utility>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

// x [N, C, H, W] and w [C, k, k] as row-major vectors; padding k / 2.
std::vector<double> dw_ref(const std::vector<double>& x, const std::vector<double>& w, int64_t N, int64_t C,
                           int64_t H, int64_t W, int64_t k, int64_t s) {
  const int64_t p = k / 2, Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
  std::vector<double> y(N * C * Ho * Wo, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = 0;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) {
              const int64_t ih = oh * s - p + i, iw = ow * s - p + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += x[((n * C + c) * H + ih) * W + iw] * w[(c * k + i) * k + j];
            }
          y[((n * C + c) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

// Gradients of sum(y * R) by the same loops.
void dw_ref_backward(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& R,
                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, std::vector<double>& dx,
                     std::vector<double>& dwt) {
  const int64_t p = k / 2, Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
  dx.assign(x.size(), 0.0);
  dwt.assign(w.size(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const double r = R[((n * C + c) * Ho + oh) * Wo + ow];
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) {
              const int64_t ih = oh * s - p + i, iw = ow * s - p + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const int64_t xi = ((n * C + c) * H + ih) * W + iw, wi = (c * k + i) * k + j;
              dx[xi] += r * w[wi];
              dwt[wi] += r * x[xi];
            }
        }
}

// The active k x k crop of the first C channels of a [Cmax, 1, 7, 7] weight.
Tensor crop(const Tensor& w7, int64_t C, int64_t k) {
  const int64_t off = 3 - k / 2;
  return w7.narrow(0, 0, C).narrow(2, off, k).narrow(3, off, k);
}

// (k, stride, (H, W))
using DwParam = std::tuple<int, int, std::pair<int, int>>;

class DepthwiseGrid : public ::testing::TestWithParam<DwParam> {};

TEST_P(DepthwiseGrid, ForwardOnCentreCropMatchesNaive) {
  auto [k, s, hw] = GetParam();
  const int64_t N = 3, C = 13, Cmax = 20, H = hw.first, W = hw.second;
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor w7 = randn_t({Cmax, 1, 7, 7}, 1, dt);
    Tensor w = crop(w7, C, k);
    ASSERT_EQ(w.stride(0), 49);  // a view, not a copy
    Tensor x = randn_t({N, C, H, W}, 2, dt).contiguous(MemoryFormat::ChannelsLast);
    Tensor y = depthwise_conv2d(x, w, s);
    const int64_t Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1;
    ASSERT_EQ(y.shape(), (Shape{N, C, Ho, Wo}));
    EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast));
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(all_close(y, dw_ref(x.to_vector<double>(), w.to_vector<double>(), N, C, H, W, k, s), tol, tol))
        << dtype_name(dt);
  }
}

TEST_P(DepthwiseGrid, BackwardReachesFull7x7LeafOnlyInsideCrop) {
  auto [k, s, hw] = GetParam();
  const int64_t N = 3, C = 13, Cmax = 20, H = hw.first, W = hw.second, off = 3 - k / 2;
  Tensor w7 = randn_t({Cmax, 1, 7, 7}, 3).set_requires_grad(true);
  Tensor x = randn_t({N, C, H, W}, 4).set_requires_grad(true);
  Tensor w = crop(w7, C, k);
  Tensor y = depthwise_conv2d(x, w, s);
  Tensor R = randn_t(y.shape(), 5);
  sum(mul(y, R)).backward();
  std::vector<double> dx, dwt;
  dw_ref_backward(x.to_vector<double>(), w.to_vector<double>(), R.to_vector<double>(), N, C, H, W, k, s, dx, dwt);
  EXPECT_TRUE(all_close(x.grad(), dx, 1e-11, 1e-11));
  ASSERT_EQ(w7.grad().shape(), w7.shape());
  std::vector<double> g7 = w7.grad().to_vector<double>();
  for (int64_t c = 0; c < Cmax; ++c)
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 7; ++j) {
        const double got = g7[(c * 7 + i) * 7 + j];
        const bool inside = c < C && i >= off && i < off + k && j >= off && j < off + k;
        if (!inside) {
          EXPECT_EQ(got, 0.0) << "c " << c << " i " << i << " j " << j;
        } else {
          const double want = dwt[(c * k + (i - off)) * k + (j - off)];
          EXPECT_NEAR(got, want, 1e-11 + 1e-11 * std::fabs(want)) << "c " << c << " i " << i << " j " << j;
        }
      }
}

std::string dw_name(const ::testing::TestParamInfo<DwParam>& info) {
  auto [k, s, hw] = info.param;
  return "k" + std::to_string(k) + "_s" + std::to_string(s) + "_" + std::to_string(hw.first) + "x" +
         std::to_string(hw.second);
}

INSTANTIATE_TEST_SUITE_P(Grid, DepthwiseGrid,
                         ::testing::Combine(::testing::Values(3, 5, 7), ::testing::Values(1, 2),
                                            ::testing::Values(std::make_pair(7, 7), std::make_pair(8, 8),
                                                              std::make_pair(13, 9))),
                         dw_name);

class DepthwiseGradCheck : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(DepthwiseGradCheck, ThroughCentreCropOfLeaf) {
  auto [k, s] = GetParam();
  Tensor x = randn_t({2, 3, 6, 5}, 6).set_requires_grad(true);
  Tensor w7 = randn_t({5, 1, 7, 7}, 7).set_requires_grad(true);
  const int64_t kk = k, ss = s;
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return depthwise_conv2d(in[0], crop(in[1], 3, kk), ss); },
                         {x, w7}));
}

INSTANTIATE_TEST_SUITE_P(Ks, DepthwiseGradCheck,
                         ::testing::Combine(::testing::Values(3, 5, 7), ::testing::Values(1, 2)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
                           return "k" + std::to_string(std::get<0>(info.param)) + "_s" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(Depthwise, GradCheckPlainWeight) {
  Tensor x = randn_t({2, 4, 5, 7}, 8).set_requires_grad(true);
  Tensor w = randn_t({4, 1, 3, 3}, 9).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return depthwise_conv2d(in[0], in[1], 2); }, {x, w}));
}

TEST(Depthwise, ContiguousInputGivesSameResultAsChannelsLast) {
  Tensor x = randn_t({3, 13, 9, 7}, 10, DType::F32), w = randn_t({13, 1, 5, 5}, 11, DType::F32);
  Tensor y1 = depthwise_conv2d(x, w, 2), y2 = depthwise_conv2d(x.contiguous(MemoryFormat::ChannelsLast), w, 2);
  EXPECT_TRUE(y1.is_contiguous(MemoryFormat::ChannelsLast));
  EXPECT_TRUE(all_close(y1, y2, 0, 0));
}

TEST(Depthwise, MatchesGroupedConv2d) {
  // Depthwise is conv2d with groups = C: the two independent kernels agree.
  Tensor x = randn_t({3, 13, 8, 7}, 12), w = randn_t({13, 1, 7, 7}, 13);
  Conv2dArgs a;
  a.stride = {2, 2};
  a.padding = {3, 3};
  a.groups = 13;
  EXPECT_TRUE(all_close(depthwise_conv2d(x, w, 2), conv2d(x, w, Tensor(), a), 1e-12, 1e-12));
}

TEST(Depthwise, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 5, 7, 7}, 14).set_requires_grad(true);
  Tensor w7 = randn_t({8, 1, 7, 7}, 15).set_requires_grad(true);
  sum(depthwise_conv2d(x, crop(w7, 5, 5), 1)).backward();
  std::vector<double> gx = x.grad().to_vector<double>(), gw = w7.grad().to_vector<double>();
  sum(depthwise_conv2d(x, crop(w7, 5, 5), 1)).backward();
  for (double& v : gx) v *= 2;
  for (double& v : gw) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), gx, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w7.grad(), gw, 1e-12, 1e-12));
}

TEST(Depthwise, ResultsDoNotDependOnThreadCount) {
  // Large enough that every kernel takes its parallel path.
  Tensor x = randn_t({5, 32, 16, 16}, 16, DType::F32).set_requires_grad(true);
  Tensor w7 = randn_t({40, 1, 7, 7}, 17, DType::F32).set_requires_grad(true);
  auto run = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    x.set_grad(Tensor());
    w7.set_grad(Tensor());
    Tensor y = depthwise_conv2d(x, crop(w7, 32, 5), 2);
    sum(mul(y, y)).backward();
    omp_set_num_threads(prev);
    return std::vector<Tensor>{y, x.grad(), w7.grad()};
  };
  std::vector<Tensor> r1 = run(1), r2 = run(2);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(all_close(r1[i], r2[i], 0, 0)) << i;
}

TEST(Depthwise, MismatchedChannelsNameTheShapes) {
  std::string m = error_of([] { depthwise_conv2d(randn_t({2, 5, 7, 7}, 1), randn_t({4, 1, 3, 3}, 2), 1); });
  EXPECT_TRUE(has(m, "depthwise_conv2d") && has(m, "[2, 5, 7, 7]") && has(m, "[4, 1, 3, 3]")) << m;
}

TEST(Depthwise, BadKernelShapesAndStrideAreRefused) {
  std::string m = error_of([] { depthwise_conv2d(randn_t({2, 4, 7, 7}, 1), randn_t({4, 1, 4, 4}, 2), 1); });
  EXPECT_TRUE(has(m, "odd") && has(m, "[4, 1, 4, 4]")) << m;
  m = error_of([] { depthwise_conv2d(randn_t({2, 4, 7, 7}, 1), randn_t({4, 1, 3, 5}, 2), 1); });
  EXPECT_TRUE(has(m, "[C, 1, k, k]") && has(m, "[4, 1, 3, 5]")) << m;
  m = error_of([] { depthwise_conv2d(randn_t({2, 4, 7, 7}, 1), randn_t({4, 2, 3, 3}, 2), 1); });
  EXPECT_TRUE(has(m, "[4, 2, 3, 3]")) << m;
  m = error_of([] { depthwise_conv2d(randn_t({2, 4, 7, 7}, 1), randn_t({4, 1, 3, 3}, 2), 0); });
  EXPECT_TRUE(has(m, "stride")) << m;
}

}  // namespace
