// main() of the MPI test executables: MPI_Init, GoogleTest on every rank
// (rank 0 prints the usual report, the others only their failures, prefixed
// with the rank), and one exit status for all: failed if any rank failed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "tests/mpi/mpi_test_util.h"

namespace ofa::test {

namespace {
std::shared_ptr<dist::MpiCommunicator> g_world;
int g_rank = 0;

// Failures of ranks other than 0.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "rank %d: %s:%d: failure\n%s\n", g_rank, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
    std::fflush(stderr);
  }
};
}  // namespace

std::shared_ptr<dist::MpiCommunicator> world() { return g_world; }

SharedTempDir::SharedTempDir() {
  if (world()->rank() == 0) {
    owner_ = std::make_unique<TempDir>();
    path_ = owner_->path();
  }
  world()->broadcast_bytes(path_, 0);
}

SharedTempDir::~SharedTempDir() { world()->barrier(); }

}  // namespace ofa::test

int main(int argc, char** argv) {
  ofa::dist::MpiSession session(&argc, &argv);
  ofa::test::g_rank = static_cast<int>(session.rank());
  ofa::dist::CommOptions opt;
  opt.timeout_s = 60;
  ofa::test::g_world = std::make_shared<ofa::dist::MpiCommunicator>(MPI_COMM_WORLD, opt);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new ofa::test::ResetDefaultGenerator);
  if (session.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new ofa::test::RankFailurePrinter);
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  std::vector<int64_t> v = {failed};
  ofa::test::g_world->allreduce_max(v);
  if (session.rank() == 0 && v[0] != 0 && !failed) std::printf("FAILED on another rank (see its messages)\n");
  // Every test skipped (e.g. no GPU for the NCCL tests): exit 77, which
  // ctest reports as skipped (SKIP_RETURN_CODE), never as passed.
  const auto* unit = ::testing::UnitTest::GetInstance();
  std::vector<int64_t> all_skipped = {v[0] == 0 && unit->skipped_test_count() > 0 && unit->successful_test_count() == 0};
  ofa::test::g_world->allreduce_max(all_skipped);
  ofa::test::g_world.reset();
  if (v[0] == 0 && all_skipped[0] != 0) return 77;
  return static_cast<int>(v[0]);
}
