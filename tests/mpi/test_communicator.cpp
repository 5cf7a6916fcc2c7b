// mpi-ranks: 2 3
// MpiCommunicator: allreduce (sum, average, max) of F32 / F64 / I64 tensors
// of odd sizes, broadcast from any root, allgather, barrier, asynchronous
// handles waited out of order, host sums, any-rank decisions, sequence
// numbers, and errors that name the rank, the operation and its number
// (mismatched dtypes, element counts and operations between ranks, bad
// tensors), after which the communicator still works.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/mpi/mpi_test_util.h"

using namespace ofa;
using ofa::test::world;
using ofa::test::has;

namespace {

int64_t R() { return world()->rank(); }
int64_t W() { return world()->world_size(); }

// Element i of rank r's tensor: distinct per rank and element, exact in float.
double value(int64_t r, int64_t i) { return static_cast<double>((r + 1) * (i % 97)) + 0.25 * static_cast<double>(r); }

Tensor rank_tensor(DType dt, int64_t n, int64_t r) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = dt == DType::I64 ? std::floor(value(r, i)) * (r % 2 ? -1 : 1) : value(r, i);
  return from_vector<double>(v, {n}).to(dt);
}

std::vector<double> as_doubles(const Tensor& t) { return t.to(DType::F64).to_vector<double>(); }

class AllreduceTest : public ::testing::TestWithParam<std::tuple<DType, int64_t>> {};

TEST_P(AllreduceTest, SumAverageAndMaxOverEveryRank) {
  const auto [dt, n] = GetParam();
  std::vector<std::vector<double>> inputs;
  for (int64_t r = 0; r < W(); ++r) inputs.push_back(as_doubles(rank_tensor(dt, n, r)));
  for (dist::ReduceOp op : {dist::ReduceOp::Sum, dist::ReduceOp::Average, dist::ReduceOp::Max}) {
    Tensor t = rank_tensor(dt, n, R());
    world()->allreduce(t, op);
    const std::vector<double> got = as_doubles(t);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0, mx = -1e300;
      for (int64_t r = 0; r < W(); ++r) {
        const double x = inputs[static_cast<size_t>(r)][static_cast<size_t>(i)];
        sum += x;
        mx = std::max(mx, x);
      }
      double want = op == dist::ReduceOp::Sum ? sum : op == dist::ReduceOp::Max ? mx : sum / static_cast<double>(W());
      if (dt == DType::I64 && op == dist::ReduceOp::Average) want = std::trunc(want);
      const double tol = dt == DType::F32 ? 1e-6 * (1 + std::fabs(want)) : 0.0;
      ASSERT_NEAR(got[static_cast<size_t>(i)], want, tol)
          << dist::reduce_op_name(op) << " " << dtype_name(dt) << " n=" << n << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, AllreduceTest,
                         ::testing::Combine(::testing::Values(DType::F32, DType::F64, DType::I64),
                                            ::testing::Values(int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{100003})));

TEST(Communicator, AReduceOfAMultiDimensionalTensorKeepsItsShape) {
  Tensor t = full({3, 5, 7}, 1.5, DType::F32);
  world()->allreduce(t, dist::ReduceOp::Sum);
  EXPECT_EQ(t.shape(), (Shape{3, 5, 7}));
  for (double x : as_doubles(t.reshape({-1}))) ASSERT_EQ(x, 1.5 * static_cast<double>(W()));
}

TEST(Communicator, BroadcastFromEveryRoot) {
  for (int64_t root = 0; root < W(); ++root)
    for (DType dt : {DType::F32, DType::F64, DType::I64}) {
      Tensor t = rank_tensor(dt, 13, R());
      world()->broadcast(t, root);
      EXPECT_EQ(as_doubles(t), as_doubles(rank_tensor(dt, 13, root))) << "root " << root << " " << dtype_name(dt);
    }
}

TEST(Communicator, AllgatherPutsRankRAtRowR) {
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    Tensor in = rank_tensor(dt, 11, R()).reshape({11});
    Tensor out = world()->allgather(in);
    ASSERT_EQ(out.shape(), (Shape{W(), 11}));
    for (int64_t r = 0; r < W(); ++r)
      EXPECT_EQ(as_doubles(out.select(0, r).contiguous()), as_doubles(rank_tensor(dt, 11, r))) << "row " << r;
  }
}

TEST(Communicator, AsynchronousHandlesWaitedInAnyOrder) {
  std::vector<Tensor> ts;
  std::vector<dist::WorkPtr> works;
  for (int k = 0; k < 5; ++k) {
    ts.push_back(full({17 + k}, static_cast<double>(k + 1), DType::F64));
    works.push_back(world()->allreduce_async(ts.back(), dist::ReduceOp::Sum));
  }
  works.push_back(world()->barrier_async());
  for (int k = 5; k >= 0; --k) {
    EXPECT_FALSE(works[static_cast<size_t>(k)]->name().empty());
    works[static_cast<size_t>(k)]->wait();
    works[static_cast<size_t>(k)]->wait();  // idempotent
    EXPECT_TRUE(works[static_cast<size_t>(k)]->test());
  }
  for (int k = 0; k < 5; ++k)
    for (double x : as_doubles(ts[static_cast<size_t>(k)])) ASSERT_EQ(x, static_cast<double>((k + 1) * W()));
  EXPECT_TRUE(has(works[0]->name(), "allreduce #")) << works[0]->name();
}

TEST(Communicator, BarrierAndSequenceNumbersAgree) {
  const int64_t before = world()->last_seq();
  world()->barrier();
  world()->barrier();
  EXPECT_EQ(world()->last_seq(), before + 2);
  std::vector<int64_t> seqs = {world()->last_seq(), -world()->last_seq()};
  world()->allreduce_max(seqs);
  EXPECT_EQ(seqs[0], -seqs[1]) << "ranks are at different sequence numbers";
}

TEST(Communicator, HostSumAnyAndMax) {
  std::vector<double> v = {static_cast<double>(R()), 0.5, 1e-300};
  world()->allreduce_sum(v);
  EXPECT_EQ(v[0], static_cast<double>(W() * (W() - 1) / 2));
  EXPECT_EQ(v[1], 0.5 * static_cast<double>(W()));
  EXPECT_EQ(v[2], 1e-300 * static_cast<double>(W()));
  EXPECT_FALSE(world()->any(false));
  EXPECT_TRUE(world()->any(R() == W() - 1));
  EXPECT_TRUE(world()->any(true));
  std::vector<int64_t> m = {R(), -R(), 7};
  world()->allreduce_max(m);
  EXPECT_EQ(m, (std::vector<int64_t>{W() - 1, 0, 7}));
  std::vector<double> empty_v;
  world()->allreduce_sum(empty_v);
  EXPECT_TRUE(empty_v.empty());
}

TEST(Communicator, ARankWithAnotherDtypeGetsAnErrorNamingRankOperationAndNumber) {
  Tensor t = R() == 0 ? zeros({5}, DType::F32) : zeros({5}, DType::F64);
  const int64_t seq = world()->last_seq() + 1;
  const std::string e = test::error_of([&] { world()->allreduce(t, dist::ReduceOp::Sum); });
  EXPECT_TRUE(has(e, "rank " + std::to_string(R()) + ": allreduce #" + std::to_string(seq) + ": ")) << e;
  EXPECT_TRUE(has(e, "rank 0 called allreduce #" + std::to_string(seq) + " of 5 float32 elements")) << e;
  EXPECT_TRUE(has(e, "rank 1 called allreduce #" + std::to_string(seq) + " of 5 float64 elements")) << e;
  // Nothing was sent: the communicator goes on.
  Tensor ok = ones({3}, DType::F32);
  world()->allreduce(ok, dist::ReduceOp::Sum);
  EXPECT_EQ(as_doubles(ok), std::vector<double>(3, static_cast<double>(W())));
}

TEST(Communicator, ARankWithAnotherElementCountOrOperationGetsAnError) {
  Tensor t = zeros({R() == 0 ? 4 : 6}, DType::I64);
  std::string e = test::error_of([&] { world()->broadcast(t, 0); });
  EXPECT_TRUE(has(e, "rank " + std::to_string(R()) + ": broadcast #")) << e;
  EXPECT_TRUE(has(e, "of 4 int64 elements from root 0")) << e;
  EXPECT_TRUE(has(e, "of 6 int64 elements from root 0")) << e;
  // Different operations: rank 0 reduces while the others broadcast.
  Tensor u = zeros({4}, DType::F32);
  e = test::error_of([&] {
    if (R() == 0) world()->allreduce(u, dist::ReduceOp::Average);
    else world()->broadcast(u, 0);
  });
  EXPECT_TRUE(has(e, "rank 0 called allreduce")) << e;
  EXPECT_TRUE(has(e, "(average)")) << e;
  EXPECT_TRUE(has(e, "rank 1 called broadcast")) << e;
  world()->barrier();
}

TEST(Communicator, UnusableTensorsAreRefusedLocallyWithTheOperationNamed) {
  const int64_t seq = world()->last_seq() + 1;
  Tensor m = zeros({4, 6}, DType::F32).transpose(0, 1);
  std::string e = test::error_of([&] { world()->allreduce(m, dist::ReduceOp::Sum); });
  EXPECT_TRUE(has(e, "rank " + std::to_string(R()) + ": allreduce #" + std::to_string(seq) + ": ")) << e;
  EXPECT_TRUE(has(e, "not contiguous")) << e;
  e = test::error_of([&] { world()->broadcast(zeros({2}), W()); });
  EXPECT_TRUE(has(e, "root " + std::to_string(W()) + " is not a rank")) << e;
  e = test::error_of([&] { world()->allgather(zeros({3}), zeros({3 * W() + 1})); });
  EXPECT_TRUE(has(e, "allgather #")) << e;
  EXPECT_TRUE(has(e, "world_size")) << e;
  e = test::error_of([&] { world()->allreduce(Tensor(), dist::ReduceOp::Sum); });
  EXPECT_TRUE(has(e, "undefined")) << e;
  // Every rank refused the same calls: the sequence numbers still agree.
  std::vector<int64_t> seqs = {world()->last_seq(), -world()->last_seq()};
  world()->allreduce_max(seqs);
  EXPECT_EQ(seqs[0], -seqs[1]);
}

TEST(Communicator, LaunchEnvironmentIsRecognised) {
  EXPECT_TRUE(dist::launched_by_mpi());
  EXPECT_EQ(dist::launcher_world_size(), W());
  EXPECT_EQ(dist::launcher_rank(), R());
  EXPECT_GE(world()->local_rank(), 0);
  EXPECT_LT(world()->local_rank(), W());
  EXPECT_STREQ(world()->backend(), "mpi");
}

TEST(Communicator, BroadcastBytesCarriesAnyString) {
  std::string s = R() == 0 ? std::string("path/with \0 nul and odd length", 30) : "junk";
  world()->broadcast_bytes(s, 0);
  EXPECT_EQ(s, std::string("path/with \0 nul and odd length", 30));
  std::string empty_s = R() == 0 ? "" : "xyz";
  world()->broadcast_bytes(empty_s, 0);
  EXPECT_EQ(empty_s, "");
}

}  // namespace
