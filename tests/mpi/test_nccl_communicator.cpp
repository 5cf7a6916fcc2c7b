// mpi-ranks: 1
// NcclCommunicator bootstrapped over MPI on one rank and one GPU (a GPU
// machine with Open MPI; scripts/gpu_check.sh, whose machine has none, runs
// tests/cuda/test_nccl_single_process.cpp instead):
// allreduce (sum, average, max), broadcast and allgather of CUDA tensors,
// asynchronous handles, and the MPI-bootstrapped host sums. With one rank
// every collective is the identity (allgather a copy), so the test checks
// that data goes through NCCL's path intact and every call is accepted.
// Reported as skipped without a GPU, or in a build without CUDA or MPI.
#include <gtest/gtest.h>

#include "tests/mpi/mpi_test_util.h"
#include "tests/support/test_util.h"

#if defined(OFA_WITH_CUDA) && defined(OFA_WITH_MPI)
#include "distributed/nccl_communicator.h"
#endif

using namespace ofa;

namespace {

#if defined(OFA_WITH_CUDA) && defined(OFA_WITH_MPI)

Tensor ramp(DType dt, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i % 251) - 100.0;
  return from_vector<double>(v, {n}).to(dt);
}

TEST(NcclCommunicator, OneRankCollectivesOnTheGpu) {
  OFA_REQUIRE_CUDA();
  dist::CommOptions opt;
  opt.timeout_s = 60;
  dist::NcclCommunicator nccl(test::world(), opt);
  ASSERT_EQ(nccl.world_size(), 1);
  const Device gpu = Device::cuda(0);
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    for (int64_t n : {1, 7, 100003}) {
      const Tensor want = ramp(dt, n);
      for (dist::ReduceOp op : {dist::ReduceOp::Sum, dist::ReduceOp::Average, dist::ReduceOp::Max}) {
        if (dt == DType::I64 && op == dist::ReduceOp::Average) continue;
        Tensor t = want.to(gpu);
        nccl.allreduce(t, op);
        EXPECT_TRUE(test::all_close(t.to(Device::cpu()), want, 0, 0)) << dist::reduce_op_name(op) << " n " << n;
      }
      Tensor b = want.to(gpu);
      nccl.broadcast(b, 0);
      EXPECT_TRUE(test::all_close(b.to(Device::cpu()), want, 0, 0)) << "broadcast n " << n;
      Tensor g = nccl.allgather(want.to(gpu));
      EXPECT_TRUE(test::all_close(g.to(Device::cpu()).reshape({n}), want, 0, 0)) << "allgather n " << n;
    }
  }
  // Asynchronous handles, waited in reverse order.
  Tensor a = ramp(DType::F32, 1023).to(gpu), c = ramp(DType::F32, 17).to(gpu);
  auto wa = nccl.allreduce_async(a, dist::ReduceOp::Sum);
  auto wc = nccl.allreduce_async(c, dist::ReduceOp::Sum);
  wc->wait();
  wa->wait();
  EXPECT_TRUE(test::all_close(a.to(Device::cpu()), ramp(DType::F32, 1023), 0, 0));
  std::vector<double> host = {1.5, -2.0};
  nccl.allreduce_sum(host);
  EXPECT_EQ(host, (std::vector<double>{1.5, -2.0}));
}

#else

TEST(NcclCommunicator, OneRankCollectivesOnTheGpu) {
  GTEST_SKIP() << "SKIPPED: this build has no NCCL communicator (it needs CUDA with NCCL, and MPI)";
}

#endif

}  // namespace
