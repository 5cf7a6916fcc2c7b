// NcclCommunicator: the Communicator over NCCL for CUDA tensors (F32, F64,
// I64), bootstrapped over MPI.
//
// Setup (collective over the bootstrap communicator's ranks): each rank takes
// the GPU local_rank % visible devices (one GPU per local rank: more ranks on
// a host than GPUs is refused), rank 0 makes the ncclUniqueId and broadcasts
// it over MPI, then ncclCommInitRank.
//
// Ordering: operations run on a communication stream of their own. Each one
// first waits (cudaStreamWaitEvent) for an event recorded on the compute
// stream (the legacy default stream unless set_compute_stream), so it sees
// every kernel queued before it; Work::wait() makes the compute stream wait
// for the operation's completion event, without blocking the host, so
// compute queued after wait() sees the result while compute queued before it
// overlaps the communication. synchronize() blocks the host.
//
// Checks: every NCCL and CUDA call; a failure prints "rank R: <op> #seq:
// <call> failed: <NCCL's / CUDA's message>" and ends the process. Mismatched
// calls between ranks are found (verify) through the MPI bootstrap before
// anything is queued (CommError). Host values (allreduce_sum, any,
// allreduce_max) go through the MPI bootstrap.
//
// Watchdog: a thread polls the queued operations' completion events and
// ncclCommGetAsyncError; an operation not complete timeout_s after it was
// queued (or an asynchronous NCCL error) prints the rank, the operation and
// its number, calls ncclCommAbort (so that no rank stays blocked inside
// NCCL) and ends the process with kWatchdogExitCode (MPI_Abort when MPI runs
// with MPI_THREAD_MULTIPLE, else _Exit: the launcher then ends the job).
//
// Compiled only with CUDA and MPI (OFA_WITH_CUDA and OFA_WITH_MPI).
#pragma once
#if defined(OFA_WITH_CUDA) && defined(OFA_WITH_MPI)
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "distributed/mpi_communicator.h"

namespace ofa::dist {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<MpiCommunicator> bootstrap, CommOptions opt = {});
  ~NcclCommunicator() override;  // stops the watchdog, ncclCommDestroy

  int64_t rank() const override { return boot_->rank(); }
  int64_t world_size() const override { return boot_->world_size(); }
  int64_t local_rank() const override { return boot_->local_rank(); }
  const char* backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }

  WorkPtr allreduce_async(const Tensor& t, ReduceOp op) override;
  WorkPtr broadcast_async(const Tensor& t, int64_t root) override;
  WorkPtr allgather_async(const Tensor& in, const Tensor& out) override;
  WorkPtr barrier_async() override;

  void allreduce_sum(std::vector<double>& values) override { boot_->allreduce_sum(values); }
  bool any(bool local) override { return boot_->any(local); }
  void allreduce_max(std::vector<int64_t>& values) override { boot_->allreduce_max(values); }

  // The stream compute runs on (a cudaStream_t; nullptr: the legacy default stream).
  void set_compute_stream(void* stream) { compute_stream_ = stream; }
  // Blocks the host until every queued operation has completed (watchdog on).
  void synchronize();

  // Shared with the Work handles and the watchdog.
  struct Pending;

 private:
  WorkPtr enqueue(OpCode op, const std::string& name, std::vector<Tensor> keep,
                  const std::function<int(void* stream)>& launch);
  void watchdog_loop();
  [[noreturn]] void fail(const std::string& message);

  std::shared_ptr<MpiCommunicator> boot_;
  int device_ = 0;
  void* comm_ = nullptr;           // ncclComm_t
  void* comm_stream_ = nullptr;    // cudaStream_t
  void* compute_stream_ = nullptr;  // cudaStream_t
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Pending>> pending_;
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

}  // namespace ofa::dist
#endif  // OFA_WITH_CUDA && OFA_WITH_MPI
