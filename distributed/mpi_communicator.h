// MpiCommunicator: the Communicator over MPI (Open MPI) for CPU tensors
// (F32, F64, I64), with non-blocking collectives (MPI_Iallreduce,
// MPI_Ibcast, MPI_Iallgather, MPI_Ibarrier) behind Work handles.
//
// Errors: the communicator duplicates the given MPI communicator and sets
// MPI_ERRORS_RETURN on its copy so that every failing MPI call is reported
// as "rank R: <op> #seq: <MPI call> failed: <MPI's message>" before the
// process calls MPI_Abort (an MPI failure leaves the job in no state to go
// on). Mismatched calls between ranks (verify) and unusable tensors are
// ofa::dist::CommError exceptions instead: nothing has been sent yet.
//
// Watchdog: wait() polls the request (MPI_Test; yields, then sleeps a
// little, so that a waiting rank leaves the cores to the others) and ends
// the process with MPI_Abort(kWatchdogExitCode) once it has waited
// timeout_s. MPI progresses non-blocking collectives inside MPI calls, so
// the time counted is the time spent waiting.
//
// Compiled only with MPI (OFA_WITH_MPI).
#pragma once
#ifdef OFA_WITH_MPI
#include <mpi.h>

#include <string>
#include <vector>

#include "distributed/communicator.h"

namespace ofa::dist {

class MpiCommunicator final : public Communicator {
 public:
  // MPI must be initialised; duplicates `comm` (collective over it).
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD, CommOptions opt = {});
  // Frees the duplicate: destroy it before MPI_Finalize.
  ~MpiCommunicator() override;

  int64_t rank() const override { return rank_; }
  int64_t world_size() const override { return size_; }
  int64_t local_rank() const override { return local_rank_; }
  int64_t local_size() const { return local_size_; }
  const char* backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  WorkPtr allreduce_async(const Tensor& t, ReduceOp op) override;
  WorkPtr broadcast_async(const Tensor& t, int64_t root) override;
  WorkPtr allgather_async(const Tensor& in, const Tensor& out) override;
  WorkPtr barrier_async() override;

  void allreduce_sum(std::vector<double>& values) override;
  bool any(bool local) override;
  void allreduce_max(std::vector<int64_t>& values) override;

  MPI_Comm comm() const { return comm_; }

  // Broadcasts a string from root (bootstrap data: NCCL's unique id, paths).
  void broadcast_bytes(std::string& bytes, int64_t root);

  // Waits for every request with the watchdog (see the top of this file).
  void wait_requests(std::vector<MPI_Request>& reqs, const std::string& op_name);
  // Reports a failed MPI call and calls MPI_Abort unless rc is MPI_SUCCESS.
  void check_mpi(int rc, const char* call, const std::string& op_name) const;
  // The descriptor check of an operation (when verify is on): throws
  // CommError naming this rank, the operation, `seq` and what each rank
  // called. Also used by the NCCL communicator for its own operations.
  void verify(OpCode op, int64_t seq, DType dt, int64_t numel, int64_t root, int64_t extra);

 private:
  // The host reductions (allreduce_sum, any, allreduce_max): `n` elements of
  // `type` at `data`, reduced in place with `mpi_op` as operation `op`.
  void host_allreduce(OpCode op, DType dt, void* data, int64_t n, MPI_Datatype type, MPI_Op mpi_op);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int64_t rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

// MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread calls MPI)
// unless MPI is initialised already; MPI_Finalize at destruction if it
// initialised it. For programs and tests.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int64_t rank() const { return rank_; }
  int64_t world_size() const { return size_; }
  // Ends every rank now (MPI_Abort on MPI_COMM_WORLD).
  [[noreturn]] static void abort(int exit_code);

 private:
  bool owns_ = false;
  int64_t rank_ = 0, size_ = 1;
};

}  // namespace ofa::dist
#endif  // OFA_WITH_MPI
