// The CUDA indexing, sorting and optimizer kernels' own code
// (kernels/cuda/index.cu and optim.cu, compiled as C++ against the
// emulation) against the CPU kernels: index_select and gather with repeated
// indices and strided inputs, argsort with ties, NaN and signed zeros,
// top-k ranks, invalid indices recorded in the DeviceError, SGD and Adam
// over several tensors of odd sizes. Every result here is computed in the
// same order of operations as the CPU's, so the comparisons are bitwise;
// outputs are poisoned before each run; each case runs on the default grid
// and on a 3-block grid with reverse thread order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/cpu/index.h"
#include "kernels/cpu/optim.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
namespace k = ofa::kernels;
using ofa::DType;
using namespace ofa_emu_test;

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

template <class T>
::testing::AssertionResult bitwise_equal(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "sizes " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "element " << i << " of " << got.size() << ": got " << got[i]
                                           << ", want " << want[i];
  return ::testing::AssertionSuccess();
}

std::vector<int64_t> random_index(size_t n, int64_t limit, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, limit - 1);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

template <class T>
std::vector<T> random_values(size_t n, uint64_t seed) {
  if constexpr (std::is_integral_v<T>) {
    std::vector<T> v(n);
    std::mt19937_64 rng(seed);
    for (auto& x : v) x = static_cast<T>(rng() % 2001) - 1000;
    return v;
  } else {
    return random_vec<T>(n, seed);
  }
}

template <class T>
void poison_any(std::vector<T>& v) {
  if constexpr (std::is_integral_v<T>) {
    for (auto& x : v) x = std::numeric_limits<T>::min();
  } else {
    poison(v);
  }
}

class IndexEmulated : public ::testing::TestWithParam<Grid> {
 protected:
  EmuSettings settings_{GetParam().max_blocks, GetParam().order};

  template <class T>
  void index_select_forward() {
    const int64_t outer = 3, D = 7, inner = 5, K = 9;
    auto x = random_values<T>(outer * D * inner, 1);
    const std::vector<int64_t> index{6, 0, 3, 3, 1, 6, 2, 5, 4};  // repeats, all in range
    std::vector<T> want(outer * K * inner), got(want.size());
    cpu::index_select_forward(x.data(), outer, D, inner, index.data(), K, want.data());
    poison_any(got);
    k::DeviceError err{};
    be().index_select_forward(dtype_of<T>(), x.data(), outer, D, inner, index.data(), K, got.data(), &err, nullptr);
    EXPECT_TRUE(bitwise_equal(got, want));
    EXPECT_EQ(err.code, k::kErrNone);
  }

  // Heavily repeated indices (K = 300 > one 256-index chunk, D = 5): the
  // sums of up to ~70 rows per element, in increasing k as the CPU's.
  template <class T>
  void index_select_backward(int64_t outer, int64_t D, int64_t inner, int64_t K) {
    auto gy = random_vec<T>(outer * K * inner, 2);
    auto index = random_index(K, D, 3);
    std::vector<T> want(outer * D * inner), got(want.size());
    cpu::index_select_backward(gy.data(), outer, D, inner, index.data(), K, want.data());
    poison(got);
    be().index_select_backward(dtype_of<T>(), gy.data(), outer, D, inner, index.data(), K, got.data(), nullptr);
    EXPECT_TRUE(bitwise_equal(got, want)) << "outer " << outer << " D " << D << " inner " << inner << " K " << K;
  }

  // x: a [4, 6, 5] view, stored [5, 6, 4]-permuted (strides 1, 4, 24) inside
  // a larger buffer; index [3, 8, 5] along dim 1 (smaller than x in dim 0).
  template <class T>
  void gather_forward() {
    auto xbuf = random_values<T>(5 * 6 * 4 + 3, 4);
    const T* x = xbuf.data() + 3;
    k::CudaBackend::GatherArgs a{};
    a.nd = 3;
    a.dim = 1;
    const int64_t shape[3] = {3, 8, 5}, xs[3] = {1, 4, 24};
    for (int d = 0; d < 3; ++d) {
      a.shape[d] = shape[d];
      a.x_strides[d] = xs[d];
    }
    a.x_dim_size = 6;
    a.x_shape[0] = 4;
    a.x_shape[1] = 6;
    a.x_shape[2] = 5;
    auto index = random_index(3 * 8 * 5, 6, 5);
    std::vector<T> want(index.size()), got(index.size());
    cpu::gather_forward(x, {1, 4, 24}, index.data(), {3, 8, 5}, 1, want.data());
    poison_any(got);
    k::DeviceError err{};
    be().gather_forward(dtype_of<T>(), x, index.data(), a, got.data(), &err, nullptr);
    EXPECT_TRUE(bitwise_equal(got, want));
    EXPECT_EQ(err.code, k::kErrNone);
  }

  // gx [4, 6, 5] from gy [3, 8, 5] along dim 1 (8 > 6: repeated hits), and
  // along dim 0 with index [6, 2, 5] into gx [4, 3, 5]; rows of gx beyond
  // the index's extent are zeros.
  template <class T>
  void gather_backward(int dim) {
    const std::vector<int64_t> xshape = dim == 1 ? std::vector<int64_t>{4, 6, 5} : std::vector<int64_t>{4, 3, 5};
    const std::vector<int64_t> shape = dim == 1 ? std::vector<int64_t>{3, 8, 5} : std::vector<int64_t>{6, 2, 5};
    const std::vector<int64_t> gs{xshape[1] * xshape[2], xshape[2], 1};
    const int64_t n = shape[0] * shape[1] * shape[2], nx = xshape[0] * xshape[1] * xshape[2];
    auto gy = random_vec<T>(n, 6);
    auto index = random_index(n, xshape[dim], 7);
    std::vector<T> want(nx, T(0)), got(nx);
    cpu::gather_backward(gy.data(), index.data(), shape, dim, want.data(), gs);
    k::CudaBackend::GatherArgs a{};
    a.nd = 3;
    a.dim = dim;
    for (int d = 0; d < 3; ++d) {
      a.shape[d] = shape[d];
      a.x_strides[d] = gs[d];
      a.x_shape[d] = xshape[d];
    }
    a.x_dim_size = xshape[dim];
    poison(got);
    be().gather_backward(dtype_of<T>(), gy.data(), index.data(), a, got.data(), nullptr);
    EXPECT_TRUE(bitwise_equal(got, want)) << "dim " << dim;
  }

  // Ties, NaN, -0 / +0 (equal), lines along the middle dim (inner 3).
  template <class T>
  void argsort(int64_t outer, int64_t K, int64_t inner) {
    std::vector<T> x(outer * K * inner);
    std::mt19937_64 rng(8);
    for (auto& v : x) {
      const int r = static_cast<int>(rng() % 10);
      if constexpr (std::is_floating_point_v<T>) {
        v = r == 0 ? std::numeric_limits<T>::quiet_NaN() : r == 1 ? T(-0.0) : r == 2 ? T(0) : T(int(rng() % 7) - 3);
      } else {
        v = static_cast<T>(r) - 5;
      }
    }
    for (bool desc : {false, true}) {
      std::vector<int64_t> want(x.size()), got(x.size(), -7);
      cpu::argsort(x.data(), outer, K, inner, desc, want.data());
      be().argsort(dtype_of<T>(), x.data(), outer, K, inner, desc, got.data(), nullptr);
      EXPECT_EQ(got, want) << "outer " << outer << " K " << K << " inner " << inner << (desc ? " descending" : "");
    }
  }

  template <class T>
  void topk_rank() {
    const int64_t N = 37, K = 11;
    std::vector<T> x(N * K);
    std::mt19937_64 rng(9);
    for (auto& v : x) v = static_cast<T>(int(rng() % 5));  // many ties with the target
    x[5 * K + 2] = std::numeric_limits<T>::quiet_NaN();
    auto target = random_index(N, K, 10);
    target[5] = 2;  // a NaN target: nothing ranks above it
    std::vector<int64_t> got(N, -1);
    k::DeviceError err{};
    be().topk_rank(dtype_of<T>(), x.data(), target.data(), N, K, got.data(), &err, nullptr);
    EXPECT_EQ(err.code, k::kErrNone);
    // The CPU's counts for k = 1..K of one row give its rank: the k it misses.
    std::vector<int64_t> ks(K);
    std::iota(ks.begin(), ks.end(), int64_t(1));
    for (int64_t n = 0; n < N; ++n) {
      std::vector<int64_t> correct;
      cpu::topk_correct(x.data() + n * K, target.data() + n, 1, K, ks, correct);
      int64_t want = 0;
      for (int64_t c : correct) want += c == 0 ? 1 : 0;
      EXPECT_EQ(got[n], want) << "row " << n;
    }
    EXPECT_EQ(got[5], 0);
  }
};

TEST_P(IndexEmulated, IndexSelectForward) {
  index_select_forward<float>();
  index_select_forward<double>();
  index_select_forward<int64_t>();
}
TEST_P(IndexEmulated, IndexSelectBackwardFloat) {
  index_select_backward<float>(3, 7, 5, 9);
  index_select_backward<float>(2, 5, 3, 300);
  index_select_backward<float>(1, 3, 257, 4);  // one (o, i) group past 256
}
TEST_P(IndexEmulated, IndexSelectBackwardDouble) {
  index_select_backward<double>(3, 7, 5, 9);
  index_select_backward<double>(2, 5, 3, 300);
}
TEST_P(IndexEmulated, GatherForward) {
  gather_forward<float>();
  gather_forward<double>();
  gather_forward<int64_t>();
}
TEST_P(IndexEmulated, GatherBackward) {
  for (int dim : {0, 1}) {
    gather_backward<float>(dim);
    gather_backward<double>(dim);
  }
}
TEST_P(IndexEmulated, Argsort) {
  argsort<float>(2, 7, 3);
  argsort<double>(3, 33, 1);
  argsort<int64_t>(2, 9, 2);
  argsort<float>(1, 300, 2);  // K past one 256-thread tile
  argsort<double>(4, 1, 5);
}
TEST_P(IndexEmulated, TopkRank) {
  topk_rank<float>();
  topk_rank<double>();
}

INSTANTIATE_TEST_SUITE_P(Grid, IndexEmulated,
                         ::testing::Values(Grid{0, ofa::emu::Order::Forward}, Grid{3, ofa::emu::Order::Reverse}),
                         grid_name);

// Sizes of zero: nothing written, or (K = 0) a gradient of zeros.
TEST(IndexEmulatedEdges, EmptySizes) {
  std::vector<float> gx(3 * 4 * 2);
  poison(gx);
  be().index_select_backward(DType::F32, nullptr, 3, 4, 2, nullptr, 0, gx.data(), nullptr);
  for (float v : gx) EXPECT_EQ(v, 0.f);
  std::vector<float> none;
  be().index_select_forward(DType::F32, nullptr, 3, 4, 2, nullptr, 0, none.data(), nullptr, nullptr);
  be().argsort(DType::F32, nullptr, 3, 0, 2, false, nullptr, nullptr);
  be().topk_rank(DType::F32, nullptr, nullptr, 0, 5, nullptr, nullptr, nullptr);
}

// Invalid indices are recorded (code, value, position, limit), the output
// element is zero, and a record already present is kept.
TEST(IndexEmulatedEdges, InvalidIndicesAreRecorded) {
  std::vector<float> x = random_vec<float>(2 * 4 * 3, 11), out(2 * 3 * 3);
  const std::vector<int64_t> index{1, 4, 0};
  k::DeviceError err{};
  poison(out);
  be().index_select_forward(DType::F32, x.data(), 2, 4, 3, index.data(), 3, out.data(), &err, nullptr);
  EXPECT_EQ(err.code, k::kErrIndexSelect);
  EXPECT_EQ(err.value, 4);
  EXPECT_EQ(err.position, 1);
  EXPECT_EQ(err.limit, 4);
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(out[(o * 3 + 1) * 3 + i], 0.f);
      EXPECT_EQ(out[(o * 3 + 0) * 3 + i], x[(o * 4 + 1) * 3 + i]);
    }
  // A second bad call leaves the first record.
  const std::vector<int64_t> index2{-2, 0, 0};
  be().index_select_forward(DType::F32, x.data(), 2, 4, 3, index2.data(), 3, out.data(), &err, nullptr);
  EXPECT_EQ(err.value, 4);

  k::CudaBackend::GatherArgs a{};
  a.nd = 2;
  a.dim = 1;
  a.shape[0] = 2;
  a.shape[1] = 3;
  a.x_strides[0] = 4;
  a.x_strides[1] = 1;
  a.x_dim_size = 4;
  const std::vector<int64_t> gidx{0, 1, 2, 3, -1, 2};
  std::vector<float> gout(6);
  poison(gout);
  k::DeviceError gerr{};
  be().gather_forward(DType::F32, x.data(), gidx.data(), a, gout.data(), &gerr, nullptr);
  EXPECT_EQ(gerr.code, k::kErrGather);
  EXPECT_EQ(gerr.value, -1);
  EXPECT_EQ(gerr.position, 4);
  EXPECT_EQ(gerr.limit, 4);
  EXPECT_EQ(gout[4], 0.f);
  EXPECT_EQ(gout[5], x[4 + 2]);

  const std::vector<int64_t> target{0, 5, 2};
  std::vector<int64_t> rank(3, -1);
  k::DeviceError terr{};
  be().topk_rank(DType::F32, x.data(), target.data(), 3, 5, rank.data(), &terr, nullptr);
  EXPECT_EQ(terr.code, k::kErrTopkTarget);
  EXPECT_EQ(terr.value, 5);
  EXPECT_EQ(terr.position, 1);
  EXPECT_EQ(terr.limit, 5);
  EXPECT_EQ(rank[1], 5);  // never among the top k
}

TEST(IndexEmulatedEdges, ClearErrors) {
  k::CudaBackend::GatherArgs a{};
  a.nd = 2;
  a.dim = 2;
  const std::string m = emu_error_of([&] { be().gather_forward(DType::F32, nullptr, nullptr, a, nullptr, nullptr, nullptr); });
  EXPECT_NE(m.find("gather_forward (CUDA): dim 2 outside [0, 2)"), std::string::npos) << m;
  const std::string m2 = emu_error_of(
      [&] { be().index_select_backward(DType::I64, nullptr, 1, 1, 1, nullptr, 1, nullptr, nullptr); });
  EXPECT_NE(m2.find("index_select_backward (CUDA): dtype int64 is not supported"), std::string::npos) << m2;
}

// The backward sums do not depend on the grid, the thread order or the
// number of OS threads running blocks.
TEST(IndexEmulatedEdges, BackwardIsDeterministic) {
  const int64_t outer = 2, D = 6, inner = 37, K = 50;
  auto gy = random_vec<float>(outer * K * inner, 12);
  auto index = random_index(K, D, 13);
  std::vector<float> ref(outer * D * inner);
  {
    EmuSettings one(0, ofa::emu::Order::Forward, 1);
    be().index_select_backward(DType::F32, gy.data(), outer, D, inner, index.data(), K, ref.data(), nullptr);
  }
  for (int workers : {4, 2})
    for (auto order : {ofa::emu::Order::Reverse, ofa::emu::Order::Forward})
      for (int64_t mb : {int64_t(1), int64_t(3), int64_t(4096)}) {
        EmuSettings set(mb, order, workers);
        std::vector<float> got(ref.size());
        poison(got);
        be().index_select_backward(DType::F32, gy.data(), outer, D, inner, index.data(), K, got.data(), nullptr);
        EXPECT_TRUE(bitwise_equal(got, ref)) << workers << " workers, max_blocks " << mb;
      }
}

// ---------------------------------------------------------------- optimizers

// Tensors of 1, 7, 4097 (two chunks), 9000 (three) and 0 elements.
const std::vector<int64_t> kSizes{1, 7, 4097, 0, 9000};

template <class T>
struct OptimProblem {
  std::vector<std::vector<T>> p, g, b0, b1;
  explicit OptimProblem(uint64_t seed) {
    for (size_t i = 0; i < kSizes.size(); ++i) {
      p.push_back(random_vec<T>(kSizes[i], seed + 4 * i));
      g.push_back(random_vec<T>(kSizes[i], seed + 4 * i + 1));
      b0.push_back(random_vec<T>(kSizes[i], seed + 4 * i + 2));
      b1.push_back(random_vec<T>(kSizes[i], seed + 4 * i + 3, 0.0, 1.0));
    }
  }
  std::vector<k::OptimTensor> tensors(bool first, bool bufs) {
    std::vector<k::OptimTensor> ts;
    for (size_t i = 0; i < kSizes.size(); ++i)
      ts.push_back({p[i].data(), g[i].data(), bufs ? b0[i].data() : nullptr, bufs ? b1[i].data() : nullptr,
                    kSizes[i], first && i % 2 == 0});
    return ts;
  }
};

class OptimEmulated : public ::testing::TestWithParam<Grid> {
 protected:
  EmuSettings settings_{GetParam().max_blocks, GetParam().order};

  template <class T>
  void sgd(double momentum, double dampening, double wd, bool nesterov, bool first) {
    const k::SgdCoeffs<double> cd{-0.1, momentum, 1 - dampening, wd, nesterov};
    const k::SgdCoeffs<T> c{static_cast<T>(-0.1), static_cast<T>(momentum), static_cast<T>(1 - dampening),
                            static_cast<T>(wd), nesterov};
    OptimProblem<T> want(21), got(21);
    const bool bufs = momentum != 0;
    for (size_t i = 0; i < kSizes.size(); ++i)
      cpu::sgd_step(c, first && i % 2 == 0, want.p[i].data(), want.g[i].data(), bufs ? want.b0[i].data() : nullptr,
                    kSizes[i]);
    HostScratch scratch;
    be().sgd_step(dtype_of<T>(), cd, got.tensors(first, bufs), scratch, nullptr);
    for (size_t i = 0; i < kSizes.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(got.p[i], want.p[i])) << "tensor " << i << " momentum " << momentum;
      EXPECT_TRUE(bitwise_equal(got.b0[i], want.b0[i])) << "tensor " << i << " momentum " << momentum;
    }
  }

  template <class T>
  void adam(double wd, int step) {
    const double b1 = 0.9, b2 = 0.999, lr = 1e-3;
    const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
    const k::AdamCoeffs<double> cd{b1, 1 - b1, b2, 1 - b2, wd, std::sqrt(bc2), 1e-8, -lr / bc1};
    const k::AdamCoeffs<T> c{static_cast<T>(b1),  static_cast<T>(1 - b1),        static_cast<T>(b2),
                             static_cast<T>(1 - b2), static_cast<T>(wd),        static_cast<T>(std::sqrt(bc2)),
                             static_cast<T>(1e-8), static_cast<T>(-lr / bc1)};
    OptimProblem<T> want(31), got(31);
    for (size_t i = 0; i < kSizes.size(); ++i)
      cpu::adam_step(c, want.p[i].data(), want.g[i].data(), want.b0[i].data(), want.b1[i].data(), kSizes[i]);
    HostScratch scratch;
    be().adam_step(dtype_of<T>(), cd, got.tensors(false, true), scratch, nullptr);
    EXPECT_EQ(scratch.calls(), 1u);  // one table for all the tensors
    for (size_t i = 0; i < kSizes.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(got.p[i], want.p[i])) << "tensor " << i;
      EXPECT_TRUE(bitwise_equal(got.b0[i], want.b0[i])) << "tensor " << i;
      EXPECT_TRUE(bitwise_equal(got.b1[i], want.b1[i])) << "tensor " << i;
    }
  }
};

TEST_P(OptimEmulated, SgdFloat) {
  sgd<float>(0, 0, 0, false, false);
  sgd<float>(0, 0, 1e-4, false, false);
  sgd<float>(0.9, 0.1, 1e-4, false, true);
  sgd<float>(0.9, 0, 5e-4, true, false);
}
TEST_P(OptimEmulated, SgdDouble) {
  sgd<double>(0, 0, 1e-4, false, false);
  sgd<double>(0.9, 0.1, 1e-4, false, true);
  sgd<double>(0.9, 0, 5e-4, true, true);
}
TEST_P(OptimEmulated, AdamFloat) {
  adam<float>(0, 1);
  adam<float>(1e-2, 7);
}
TEST_P(OptimEmulated, AdamDouble) {
  adam<double>(0, 1);
  adam<double>(1e-2, 7);
}

INSTANTIATE_TEST_SUITE_P(Grid, OptimEmulated,
                         ::testing::Values(Grid{0, ofa::emu::Order::Forward}, Grid{3, ofa::emu::Order::Reverse}),
                         grid_name);

TEST(OptimEmulatedEdges, MissingBuffersAreErrors) {
  std::vector<float> p(4), g(4);
  HostScratch scratch;
  const k::SgdCoeffs<double> c{-0.1, 0.9, 1, 0, false};
  const std::string m = emu_error_of(
      [&] { be().sgd_step(DType::F32, c, {{p.data(), g.data(), nullptr, nullptr, 4, false}}, scratch, nullptr); });
  EXPECT_NE(m.find("sgd_step (CUDA): tensor 0 without its momentum buffer"), std::string::npos) << m;
  const k::AdamCoeffs<double> a{0.9, 0.1, 0.999, 0.001, 0, 1, 1e-8, -1e-3};
  const std::string m2 = emu_error_of(
      [&] { be().adam_step(DType::F32, a, {{p.data(), g.data(), p.data(), nullptr, 4, false}}, scratch, nullptr); });
  EXPECT_NE(m2.find("adam_step (CUDA): tensor 0 without its exp_avg_sq"), std::string::npos) << m2;
  // No tensor with elements: nothing to copy, no launch.
  be().adam_step(DType::F32, a, {{nullptr, nullptr, nullptr, nullptr, 0, false}}, scratch, nullptr);
  EXPECT_EQ(scratch.calls(), 0u);
}

}  // namespace
