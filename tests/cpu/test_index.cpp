// index_select, gather (forward against naive loops, backward with repeated
// indices, gradient checks), argsort (stability, descending, NaN) and
// topk_accuracy; out-of-range indices name the index and the size.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

// Row-major flat index of a 3-D position.
int64_t at3(const Shape& s, int64_t i, int64_t j, int64_t k) { return (i * s[1] + j) * s[2] + k; }

// ---------------------------------------------------------------- index_select

class IndexSelectDims : public ::testing::TestWithParam<std::tuple<int64_t, DType>> {};

TEST_P(IndexSelectDims, ForwardMatchesNaive) {
  const int64_t dim = std::get<0>(GetParam());
  const DType dt = std::get<1>(GetParam());
  const Shape s{3, 5, 4};
  Tensor x = dt == DType::I64 ? arange(60).reshape(s) : randn_t(s, 1, dt);
  std::vector<int64_t> idx = {2, 0, 2, 1};
  Tensor y = index_select(x, dim, from_vector<int64_t>(idx, {4}));
  Shape os = s;
  os[dim] = 4;
  EXPECT_EQ(y.shape(), os);
  EXPECT_EQ(y.dtype(), dt);
  std::vector<double> xv = x.to_vector<double>(), want;
  for (int64_t i = 0; i < os[0]; ++i)
    for (int64_t j = 0; j < os[1]; ++j)
      for (int64_t k = 0; k < os[2]; ++k) {
        int64_t p[3] = {i, j, k};
        p[dim] = idx[p[dim]];
        want.push_back(xv[at3(s, p[0], p[1], p[2])]);
      }
  EXPECT_TRUE(all_close(y, want, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Dims, IndexSelectDims,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::Values(DType::F32, DType::F64, DType::I64)),
                         [](const ::testing::TestParamInfo<std::tuple<int64_t, DType>>& i) {
                           return "dim" + std::to_string(std::get<0>(i.param)) + "_" + dtype_name(std::get<1>(i.param));
                         });

TEST(IndexSelect, NonContiguousInput) {
  Tensor x = randn_t({5, 3}, 2).transpose(0, 1);  // [3, 5]
  Tensor y = index_select(x, 1, from_vector<int64_t>({4, 4, 0}, {3}));
  std::vector<double> xv = x.to_vector<double>(), want;
  for (int i = 0; i < 3; ++i)
    for (int k : {4, 4, 0}) want.push_back(xv[i * 5 + k]);
  EXPECT_TRUE(all_close(y, want, 0, 0));
}

TEST(IndexSelect, BackwardAccumulatesRepeatedIndices) {
  Tensor x = randn_t({4, 3}, 3).set_requires_grad(true);
  std::vector<int64_t> idx = {0, 2, 0, 0};
  Tensor R = randn_t({4, 3}, 4);
  sum(mul(index_select(x, 0, from_vector<int64_t>(idx, {4})), R)).backward();
  std::vector<double> rv = R.to_vector<double>(), want(12, 0.0);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j) want[idx[k] * 3 + j] += rv[k * 3 + j];
  EXPECT_TRUE(all_close(x.grad(), want, 1e-15, 1e-15));
}

TEST(IndexSelect, GradCheckWithRepeatsAlongMiddleDim) {
  Tensor x = randn_t({2, 4, 3}, 5).set_requires_grad(true);
  Tensor idx = from_vector<int64_t>({3, 1, 3, 3, 0}, {5});
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return index_select(in[0], 1, idx); }, {x}));
}

TEST(IndexSelect, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({4, 3}, 6).set_requires_grad(true);
  Tensor idx = from_vector<int64_t>({1, 1, 3}, {3});
  sum(index_select(x, 0, idx)).backward();
  std::vector<double> g1 = x.grad().to_vector<double>();
  sum(index_select(x, 0, idx)).backward();
  for (double& v : g1) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), g1, 0, 0));
}

TEST(IndexSelect, OutOfRangeIndexNamesIndexAndSize) {
  const std::string m = error_of([] { index_select(randn_t({3, 5}, 1), 1, from_vector<int64_t>({0, 7}, {2})); });
  EXPECT_NE(m.find("index 7"), std::string::npos) << m;
  EXPECT_NE(m.find("size 5"), std::string::npos) << m;
  const std::string neg = error_of([] { index_select(randn_t({3, 5}, 1), 0, from_vector<int64_t>({-1}, {1})); });
  EXPECT_NE(neg.find("index -1"), std::string::npos) << neg;
  const std::string ty = error_of([] { index_select(randn_t({3, 5}, 1), 0, randn_t({2}, 2)); });
  EXPECT_NE(ty.find("int64"), std::string::npos) << ty;
}

// ---------------------------------------------------------------- gather

TEST(Gather, ForwardMatchesNaiveEachDim) {
  const Shape xs{3, 5, 4};
  Tensor x = randn_t(xs, 7);
  std::vector<double> xv = x.to_vector<double>();
  for (int64_t dim = 0; dim < 3; ++dim) {
    // Smaller than x in the other dims, larger along dim (repeats allowed).
    Shape is{2, 3, 3};
    is[dim] = 6;
    std::vector<int64_t> iv(is[0] * is[1] * is[2]);
    for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int64_t>((i * 7 + 3) % xs[dim]);
    Tensor y = gather(x, dim, from_vector<int64_t>(iv, is));
    EXPECT_EQ(y.shape(), is);
    std::vector<double> want;
    for (int64_t i = 0; i < is[0]; ++i)
      for (int64_t j = 0; j < is[1]; ++j)
        for (int64_t k = 0; k < is[2]; ++k) {
          int64_t p[3] = {i, j, k};
          p[dim] = iv[at3(is, i, j, k)];
          want.push_back(xv[at3(xs, p[0], p[1], p[2])]);
        }
    EXPECT_TRUE(all_close(y, want, 0, 0)) << "dim " << dim;
  }
}

TEST(Gather, Float32AndStridedInput) {
  Tensor x = randn_t({5, 3}, 8, DType::F32).transpose(0, 1);  // [3, 5], strided
  Tensor idx = from_vector<int64_t>({4, 0, 1, 1, 2, 3}, {3, 2});
  Tensor y = gather(x, 1, idx);
  std::vector<double> xv = x.to_vector<double>();
  EXPECT_TRUE(all_close(y, {xv[4], xv[0], xv[6], xv[6], xv[12], xv[13]}, 0, 0));
}

TEST(Gather, BackwardScatterAddsRepeatedIndices) {
  Tensor x = randn_t({2, 4}, 9).set_requires_grad(true);
  std::vector<int64_t> iv = {3, 3, 0, 3, 1, 1, 1, 2};  // [2, 4]
  Tensor R = randn_t({2, 4}, 10);
  sum(mul(gather(x, 1, from_vector<int64_t>(iv, {2, 4})), R)).backward();
  std::vector<double> rv = R.to_vector<double>(), want(8, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) want[i * 4 + iv[i * 4 + j]] += rv[i * 4 + j];
  EXPECT_TRUE(all_close(x.grad(), want, 1e-15, 1e-15));
}

TEST(Gather, GradCheckDim0WithSmallerIndex) {
  Tensor x = randn_t({3, 4, 2}, 11).set_requires_grad(true);
  Tensor idx = from_vector<int64_t>({2, 2, 0, 1, 1, 1, 2, 0, 0, 0, 2, 2}, {4, 3, 1});
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return gather(in[0], 0, idx); }, {x}));
}

TEST(Gather, GradCheckLastDim) {
  Tensor x = randn_t({3, 5}, 12).set_requires_grad(true);
  Tensor idx = from_vector<int64_t>({4, 4, 0, 1, 1, 1, 2, 3, 0}, {3, 3});
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return gather(in[0], -1, idx); }, {x}));
}

TEST(Gather, OutOfRangeIndexNamesIndexAndSize) {
  const std::string m =
      error_of([] { gather(randn_t({3, 5}, 1), 1, from_vector<int64_t>({0, 5, 1}, {3, 1})); });
  EXPECT_NE(m.find("index 5"), std::string::npos) << m;
  EXPECT_NE(m.find("size 5"), std::string::npos) << m;
}

TEST(Gather, ShapeErrorsNameTheShapes) {
  const std::string rank = error_of([] { gather(randn_t({3, 5}, 1), 1, from_vector<int64_t>({0, 1}, {2})); });
  EXPECT_NE(rank.find("[2]"), std::string::npos) << rank;
  EXPECT_NE(rank.find("[3, 5]"), std::string::npos) << rank;
  const std::string big = error_of([] { gather(randn_t({3, 5}, 1), 1, zeros({4, 1}, DType::I64)); });
  EXPECT_NE(big.find("[4, 1]"), std::string::npos) << big;
}

// ---------------------------------------------------------------- argsort

TEST(Argsort, StableWithTiesAscendingAndDescending) {
  Tensor x = from_vector<double>({3, 1, 2, 1, 3, 2}, {6});
  EXPECT_EQ(argsort(x).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 5, 0, 4}));
  EXPECT_EQ(argsort(x, 0, true).to_vector<int64_t>(), (std::vector<int64_t>{0, 4, 2, 5, 1, 3}));
  EXPECT_EQ(argsort(x).dtype(), DType::I64);
}

TEST(Argsort, AllEqualKeepsInputOrder) {
  Tensor x = full({9}, 0.5);
  std::vector<int64_t> id(9);
  std::iota(id.begin(), id.end(), 0);
  EXPECT_EQ(argsort(x).to_vector<int64_t>(), id);
  EXPECT_EQ(argsort(x, -1, true).to_vector<int64_t>(), id);
}

TEST(Argsort, MatchesStdStableSortAlongEachDim) {
  // Values rounded to a few levels: many ties.
  Tensor x = uniform_t({4, 7, 5}, 13, 0, 4, DType::F32);
  std::vector<float> xv = x.to_vector<float>();
  for (float& v : xv) v = std::floor(v);
  Tensor xr = from_vector<float>(xv, {4, 7, 5});
  const Shape s{4, 7, 5};
  for (int64_t dim = 0; dim < 3; ++dim)
    for (bool desc : {false, true}) {
      std::vector<int64_t> got = argsort(xr, dim, desc).to_vector<int64_t>();
      int64_t p[3];
      for (p[0] = 0; p[0] < 4; ++p[0])
        for (p[1] = 0; p[1] < 7; ++p[1])
          for (p[2] = 0; p[2] < 5; ++p[2]) {
            if (p[dim] != 0) continue;
            auto flat = [&](int64_t k) {
              int64_t q[3] = {p[0], p[1], p[2]};
              q[dim] = k;
              return at3(s, q[0], q[1], q[2]);
            };
            std::vector<int64_t> want(s[dim]);
            std::iota(want.begin(), want.end(), 0);
            std::stable_sort(want.begin(), want.end(), [&](int64_t a, int64_t b) {
              return desc ? xv[flat(a)] > xv[flat(b)] : xv[flat(a)] < xv[flat(b)];
            });
            for (int64_t k = 0; k < s[dim]; ++k) ASSERT_EQ(got[flat(k)], want[k]) << "dim " << dim << " desc " << desc;
          }
    }
}

TEST(Argsort, StableOnLongLinesWithManyTies) {
  // Long enough that an unstable sort (introsort) would reorder ties.
  const int64_t K = 500;
  std::vector<double> v(K);
  for (int64_t i = 0; i < K; ++i) v[i] = static_cast<double>((i * 37) % 5);
  std::vector<int64_t> asc(K), desc(K);
  std::iota(asc.begin(), asc.end(), 0);
  std::iota(desc.begin(), desc.end(), 0);
  std::stable_sort(asc.begin(), asc.end(), [&](int64_t a, int64_t b) { return v[a] < v[b]; });
  std::stable_sort(desc.begin(), desc.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  Tensor x = from_vector<double>(v, {1, K});
  EXPECT_EQ(argsort(x, 1).to_vector<int64_t>(), asc);
  EXPECT_EQ(argsort(x, 1, true).to_vector<int64_t>(), desc);
}

TEST(Argsort, NaNSortsAsLargest) {
  Tensor x = from_vector<double>({2, NAN, -1, 5}, {4});
  EXPECT_EQ(argsort(x).to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 3, 1}));
  EXPECT_EQ(argsort(x, 0, true).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 0, 2}));
}

TEST(Argsort, Int64AndNoGradient) {
  EXPECT_EQ(argsort(from_vector<int64_t>({5, -2, 5, 0}, {4})).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 3, 0, 2}));
  Tensor x = randn_t({3, 4}, 14).set_requires_grad(true);
  EXPECT_FALSE(argsort(x).requires_grad());
}

// ---------------------------------------------------------------- topk accuracy

TEST(TopKAccuracy, HandComputedRows) {
  // Row 0: target 2 is the largest; row 1: target 0 is second; row 2: target 1 is last.
  Tensor logits = from_vector<double>({0.1, 0.2, 0.9, 0.5, 0.7, 0.1, 0.3, 0.0, 0.6}, {3, 3});
  Tensor target = from_vector<int64_t>({2, 0, 1}, {3});
  std::vector<double> acc = topk_accuracy(logits, target, {1, 2, 3});
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_DOUBLE_EQ(acc[0], 100.0 / 3);
  EXPECT_DOUBLE_EQ(acc[1], 200.0 / 3);
  EXPECT_DOUBLE_EQ(acc[2], 100.0);
}

TEST(TopKAccuracy, MatchesNaiveSortOnDistinctValues) {
  for (DType dt : {DType::F32, DType::F64}) {
    const int64_t N = 13, K = 10;
    Tensor logits = randn_t({N, K}, 15, dt);  // continuous draws: distinct
    std::vector<int64_t> t(N);
    for (int64_t n = 0; n < N; ++n) t[n] = (n * 7) % K;
    std::vector<double> lv = logits.to_vector<double>();
    std::vector<int64_t> ks = {1, 3, 5};
    std::vector<double> got = topk_accuracy(logits, from_vector<int64_t>(t, {N}), ks);
    for (size_t i = 0; i < ks.size(); ++i) {
      int64_t correct = 0;
      for (int64_t n = 0; n < N; ++n) {
        std::vector<int64_t> order(K);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lv[n * K + a] > lv[n * K + b]; });
        correct += std::find(order.begin(), order.begin() + ks[i], t[n]) != order.begin() + ks[i];
      }
      EXPECT_DOUBLE_EQ(got[i], 100.0 * correct / N) << "k = " << ks[i];
    }
  }
}

TEST(TopKAccuracy, BadKAndLabelsAreNamed) {
  Tensor logits = randn_t({2, 4}, 16);
  const std::string k = error_of([&] { topk_accuracy(logits, from_vector<int64_t>({0, 1}, {2}), {5}); });
  EXPECT_NE(k.find("k = 5"), std::string::npos) << k;
  const std::string t = error_of([&] { topk_accuracy(logits, from_vector<int64_t>({0, 4}, {2}), {1}); });
  EXPECT_NE(t.find("index 4"), std::string::npos) << t;
  EXPECT_NE(t.find("size 4"), std::string::npos) << t;
}

}  // namespace
