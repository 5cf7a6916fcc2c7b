// linear and matmul: forward against naive loops (float32 and float64),
// weights that are leading slices of larger ones, transposed and otherwise
// strided operands, gradients, accumulation and errors.
#include <functional>
#include <string>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

// a [M, K] x b [K, N], row-major vectors.
std::vector<double> mm_ref(const std::vector<double>& a, const std::vector<double>& b, int64_t M, int64_t K,
                           int64_t N) {
  std::vector<double> c(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[i * N + j] += a[i * K + k] * b[k * N + j];
  return c;
}

// x [M, in] w [out, in] (+ b [out]).
std::vector<double> linear_ref(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& b, int64_t M, int64_t in, int64_t out) {
  std::vector<double> y(M * out, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t k = 0; k < in; ++k) s += x[i * in + k] * w[o * in + k];
      y[i * out + o] = s;
    }
  return y;
}

// ---------------------------------------------------------------- linear

TEST(Linear, ForwardMatchesNaiveWithAndWithoutBias) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = randn_t({3, 13}, 1, dt), w = randn_t({7, 13}, 2, dt), b = randn_t({7}, 3, dt);
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    Tensor y = linear(x, w, b);
    ASSERT_EQ(y.shape(), (Shape{3, 7}));
    EXPECT_TRUE(all_close(y, linear_ref(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), 3, 13, 7),
                          tol, tol));
    EXPECT_TRUE(
        all_close(linear(x, w), linear_ref(x.to_vector<double>(), w.to_vector<double>(), {}, 3, 13, 7), tol, tol));
  }
}

TEST(Linear, LeadingSliceOfLargerWeightAndBias) {
  // The OFA classifier: an [out, in] slice of a [10, 20] weight, read with lda 20.
  Tensor w_full = randn_t({10, 20}, 4, DType::F32), b_full = randn_t({10}, 5, DType::F32);
  Tensor w = w_full.narrow(0, 0, 7).narrow(1, 0, 13), b = b_full.narrow(0, 0, 7);
  Tensor x = randn_t({5, 13}, 6, DType::F32);
  Tensor y = linear(x, w, b);
  EXPECT_TRUE(all_close(y, linear(x, w.contiguous(), b.contiguous()), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(y, linear_ref(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), 5, 13, 7),
                        1e-5, 1e-5));
}

TEST(Linear, HigherRankInputAndStridedOperands) {
  // x [2, 3, 5]; a transposed weight (stride(0) == 1); a non-contiguous x.
  Tensor x = randn_t({2, 3, 5}, 7), wt = randn_t({5, 4}, 8), b = randn_t({4}, 9);
  Tensor w = wt.transpose(0, 1);
  Tensor y = linear(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_TRUE(all_close(y, linear_ref(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), 6, 5, 4),
                        1e-12, 1e-12));
  Tensor xt = randn_t({5, 6}, 10).transpose(0, 1);  // [6, 5] with stride(1) = 6
  EXPECT_TRUE(all_close(linear(xt, w, b),
                        linear_ref(xt.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), 6, 5, 4),
                        1e-12, 1e-12));
  Tensor x1 = randn_t({5}, 25);  // a single vector: y is [out]
  Tensor y1 = linear(x1, w, b);
  ASSERT_EQ(y1.shape(), (Shape{4}));
  EXPECT_TRUE(all_close(y1, linear_ref(x1.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(), 1, 5, 4),
                        1e-12, 1e-12));
  Tensor ws = randn_t({8, 10}, 11).slice(0, 0, 8, 2).slice(1, 0, 10, 2);  // [4, 5], no unit stride: copied
  EXPECT_TRUE(all_close(linear(xt, ws), linear_ref(xt.to_vector<double>(), ws.to_vector<double>(), {}, 6, 5, 4),
                        1e-12, 1e-12));
}

TEST(Linear, GradCheckWithBias3DInput) {
  Tensor x = randn_t({2, 3, 5}, 12).set_requires_grad(true);
  Tensor w = randn_t({4, 5}, 13).set_requires_grad(true);
  Tensor b = randn_t({4}, 14).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}));
}

TEST(Linear, GradCheckThroughLeadingSliceOfLeaf) {
  Tensor x = randn_t({3, 5}, 15).set_requires_grad(true);
  Tensor w_full = randn_t({6, 8}, 16).set_requires_grad(true);
  Tensor b_full = randn_t({6}, 17).set_requires_grad(true);
  auto f = [](const std::vector<Tensor>& in) {
    return linear(in[0], in[1].narrow(0, 0, 4).narrow(1, 0, 5), in[2].narrow(0, 0, 4));
  };
  EXPECT_TRUE(grad_check(f, {x, w_full, b_full}));
  std::vector<double> gw = w_full.grad().to_vector<double>();
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t i = 0; i < 8; ++i)
      if (o >= 4 || i >= 5) EXPECT_EQ(gw[o * 8 + i], 0.0);
}

TEST(Linear, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 5}, 18).set_requires_grad(true);
  Tensor w = randn_t({4, 5}, 19).set_requires_grad(true);
  Tensor b = randn_t({4}, 20).set_requires_grad(true);
  sum(linear(x, w, b)).backward();
  std::vector<double> gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>(),
                      gb = b.grad().to_vector<double>();
  sum(linear(x, w, b)).backward();
  for (double& v : gx) v *= 2;
  for (double& v : gw) v *= 2;
  for (double& v : gb) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), gx, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w.grad(), gw, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(b.grad(), gb, 1e-12, 1e-12));
}

TEST(Linear, BiasGradientIsTheColumnSum) {
  Tensor x = randn_t({300, 3}, 21), w = randn_t({2, 3}, 22);
  Tensor b = randn_t({2}, 23).set_requires_grad(true);
  Tensor y = linear(x, w, b);
  Tensor R = randn_t(y.shape(), 24);
  sum(mul(y, R)).backward();
  std::vector<double> r = R.to_vector<double>(), want(2, 0.0);
  for (int64_t i = 0; i < 300; ++i)
    for (int64_t o = 0; o < 2; ++o) want[o] += r[i * 2 + o];
  EXPECT_TRUE(all_close(b.grad(), want, 1e-12, 1e-12));
}

TEST(Linear, MismatchedFeaturesNameTheShapes) {
  std::string m = error_of([] { linear(randn_t({3, 5}, 1), randn_t({4, 6}, 2)); });
  EXPECT_TRUE(has(m, "linear") && has(m, "[3, 5]") && has(m, "[4, 6]")) << m;
  m = error_of([] { linear(randn_t({3, 5}, 1), randn_t({4, 5}, 2), randn_t({3}, 3)); });
  EXPECT_TRUE(has(m, "bias") && has(m, "[3]") && has(m, "[4, 5]")) << m;
  m = error_of([] { linear(randn_t({3, 5}, 1), randn_t({4, 5, 1}, 2)); });
  EXPECT_TRUE(has(m, "2-D") && has(m, "[4, 5, 1]")) << m;
}

// ---------------------------------------------------------------- matmul

TEST(Matmul, Forward2DMatchesNaive) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = randn_t({7, 13}, 30, dt), b = randn_t({13, 5}, 31, dt);
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    Tensor c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{7, 5}));
    EXPECT_TRUE(all_close(c, mm_ref(a.to_vector<double>(), b.to_vector<double>(), 7, 13, 5), tol, tol));
  }
}

TEST(Matmul, TransposedAndStridedViews) {
  Tensor at = randn_t({13, 7}, 32), bt = randn_t({5, 13}, 33);
  Tensor a = at.transpose(0, 1), b = bt.transpose(0, 1);  // read with the BLAS transpose flags
  std::vector<double> want = mm_ref(a.to_vector<double>(), b.to_vector<double>(), 7, 13, 5);
  EXPECT_TRUE(all_close(matmul(a, b), want, 1e-12, 1e-12));
  Tensor as = randn_t({14, 26}, 34).slice(0, 0, 14, 2).slice(1, 0, 26, 2);  // [7, 13], no unit stride
  EXPECT_TRUE(all_close(matmul(as, b), mm_ref(as.to_vector<double>(), b.to_vector<double>(), 7, 13, 5), 1e-12, 1e-12));
  Tensor an = randn_t({9, 20}, 35).narrow(0, 1, 7).narrow(1, 3, 13);  // row stride 20
  EXPECT_TRUE(all_close(matmul(an, b), mm_ref(an.to_vector<double>(), b.to_vector<double>(), 7, 13, 5), 1e-12, 1e-12));
}

TEST(Matmul, BatchedMatchesNaivePerBatch) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = randn_t({3, 4, 6}, 36, dt), bp = randn_t({3, 5, 6}, 37, dt);
    Tensor b = bp.transpose(1, 2);  // [3, 6, 5] transposed per batch
    Tensor c = matmul(a, b);
    ASSERT_EQ(c.shape(), (Shape{3, 4, 5}));
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), want;
    for (int64_t i = 0; i < 3; ++i) {
      std::vector<double> ai(av.begin() + i * 24, av.begin() + (i + 1) * 24),
          bi(bv.begin() + i * 30, bv.begin() + (i + 1) * 30);
      std::vector<double> ci = mm_ref(ai, bi, 4, 6, 5);
      want.insert(want.end(), ci.begin(), ci.end());
    }
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(all_close(c, want, tol, tol));
  }
}

TEST(Matmul, EmptyInnerDimensionGivesZeros) {
  Tensor a = zeros({3, 0}, DType::F64), b = zeros({0, 4}, DType::F64);
  Tensor c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{3, 4}));
  EXPECT_TRUE(all_close(c, std::vector<double>(12, 0.0), 0, 0));
}

TEST(Matmul, GradCheck2DWithTransposedOperand) {
  Tensor a = randn_t({4, 3}, 38).set_requires_grad(true);
  Tensor bt = randn_t({5, 3}, 39).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return matmul(in[0], in[1].transpose(0, 1)); }, {a, bt}));
}

TEST(Matmul, GradCheckBatched) {
  Tensor a = randn_t({2, 3, 4}, 40).set_requires_grad(true);
  Tensor b = randn_t({2, 4, 5}, 41).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}));
  Tensor at = randn_t({2, 4, 3}, 42).set_requires_grad(true);
  EXPECT_TRUE(
      grad_check([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(1, 2), in[1]); }, {at, b}));
}

TEST(Matmul, GradientsAccumulateOverTwoBackwards) {
  Tensor a = randn_t({4, 3}, 43).set_requires_grad(true), b = randn_t({3, 5}, 44).set_requires_grad(true);
  sum(matmul(a, b)).backward();
  std::vector<double> ga = a.grad().to_vector<double>(), gb = b.grad().to_vector<double>();
  sum(matmul(a, b)).backward();
  for (double& v : ga) v *= 2;
  for (double& v : gb) v *= 2;
  EXPECT_TRUE(all_close(a.grad(), ga, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(b.grad(), gb, 1e-12, 1e-12));
}

TEST(Matmul, MismatchedShapesNameThem) {
  std::string m = error_of([] { matmul(randn_t({3, 4}, 1), randn_t({5, 2}, 2)); });
  EXPECT_TRUE(has(m, "matmul") && has(m, "[3, 4]") && has(m, "[5, 2]")) << m;
  m = error_of([] { matmul(randn_t({2, 3, 4}, 1), randn_t({3, 4, 2}, 2)); });
  EXPECT_TRUE(has(m, "batch") && has(m, "[2, 3, 4]") && has(m, "[3, 4, 2]")) << m;
  m = error_of([] { matmul(randn_t({3, 4}, 1), randn_t({2, 4, 2}, 2)); });
  EXPECT_TRUE(has(m, "[3, 4]") && has(m, "[2, 4, 2]")) << m;
  m = error_of([] { matmul(randn_t({3, 4}, 1), randn_t({4, 2}, 2, DType::F32)); });
  EXPECT_TRUE(has(m, "float32") && has(m, "float64")) << m;
}

}  // namespace
