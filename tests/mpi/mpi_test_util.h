// Helpers of the MPI tests (tests/mpi): the world communicator that
// mpi_test_main.cpp makes after MPI_Init, and a temporary folder shared by
// every rank.
#pragma once
#include <memory>
#include <string>

#include "distributed/mpi_communicator.h"
#include "tests/support/test_util.h"

namespace ofa::test {

// The communicator over MPI_COMM_WORLD (watchdog: 60 s, descriptor checks on).
std::shared_ptr<dist::MpiCommunicator> world();

// A fresh folder made by rank 0 and named to every rank; removed (by rank 0,
// after a barrier) when the object goes.
class SharedTempDir {
 public:
  SharedTempDir();
  ~SharedTempDir();
  const std::string& path() const { return path_; }

 private:
  std::unique_ptr<TempDir> owner_;
  std::string path_;
};

}  // namespace ofa::test
