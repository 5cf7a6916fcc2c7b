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
#include "tests/support/nccl_one_rank.h"
#endif

using namespace ofa;

namespace {

#if defined(OFA_WITH_CUDA) && defined(OFA_WITH_MPI)

TEST(NcclCommunicator, OneRankCollectivesOnTheGpu) {
  OFA_REQUIRE_CUDA();
  dist::CommOptions opt;
  opt.timeout_s = 60;
  dist::NcclCommunicator nccl(test::world(), opt);
  EXPECT_STREQ(nccl.host().name(), "mpi");
  test::expect_one_rank_collectives(nccl);
}

#else

TEST(NcclCommunicator, OneRankCollectivesOnTheGpu) {
  GTEST_SKIP() << "SKIPPED: this build has no NCCL communicator (it needs CUDA with NCCL, and MPI)";
}

#endif

}  // namespace
