// NcclCommunicator: the Communicator over NCCL for CUDA tensors (F32, F64,
// I64), bootstrapped over MPI, or in one process without MPI.
//
// Host side (NcclHost): what NCCL itself does not do, the ranks, the
// bootstrap of the unique id, the descriptor checks, the host reductions and
// ending the job, comes from a host channel: mpi_nccl_host (an
// MpiCommunicator, for mpirun-launched ranks) or single_process_nccl_host
// (world size 1, no MPI: one process on one GPU, which is how
// scripts/gpu_check.sh runs NCCL on a machine without Open MPI).
//
// Setup (collective over the host channel's ranks): each rank takes the GPU
// local_rank % visible devices (one GPU per local rank: more ranks on a host
// than GPUs is refused), rank 0 makes the ncclUniqueId and broadcasts it
// over the host channel, then ncclCommInitRank.
//
// Ordering: operations run on a communication stream of their own. Each one
// first waits (cudaStreamWaitEvent) for an event recorded on the compute
// stream (the engine's compute stream of the communicator's GPU, on which
// every op runs, unless set_compute_stream), so it sees every kernel queued
// before it; Work::wait() makes the compute stream wait for the operation's
// completion event, without blocking the host, so compute queued after
// wait() sees the result while compute queued before it overlaps the
// communication. synchronize() blocks the host.
//
// Checks: every NCCL and CUDA call; a failure prints "rank R: <op> #seq:
// <call> failed: <NCCL's / CUDA's message>" and ends the process. Mismatched
// calls between ranks are found (verify) through the host channel before
// anything is queued (CommError). Host values (allreduce_sum, any,
// allreduce_max) go through the host channel.
//
// Watchdog: a thread polls the queued operations' completion events and
// ncclCommGetAsyncError; an operation not complete timeout_s after it was
// queued (or an asynchronous NCCL error) prints the rank, the operation and
// its number, calls ncclCommAbort (so that no rank stays blocked inside
// NCCL) and ends the process with kWatchdogExitCode (through the host
// channel: MPI_Abort when MPI runs with MPI_THREAD_MULTIPLE, else _Exit, and
// the launcher then ends the job).
//
// Compiled only with CUDA (OFA_WITH_CUDA; the MPI host channel also needs
// OFA_WITH_MPI). Refused on the emulated CUDA backend (NCCL needs a GPU).
#pragma once
#if defined(OFA_WITH_CUDA)
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "distributed/communicator.h"
#ifdef OFA_WITH_MPI
#include "distributed/mpi_communicator.h"
#endif

namespace ofa::dist {

// The host channel of an NCCL communicator (see the top of this file).
class NcclHost {
 public:
  virtual ~NcclHost() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  virtual int64_t local_rank() const = 0;
  virtual int64_t local_size() const = 0;  // ranks on this host
  virtual const char* name() const = 0;    // "mpi", "single process"
  // Every rank's `bytes` becomes root's.
  virtual void broadcast_bytes(std::string& bytes, int64_t root) = 0;
  // Throws CommError unless every rank calls the same operation (see MpiCommunicator::verify).
  virtual void verify(OpCode op, int64_t seq, DType dt, int64_t numel, int64_t root, int64_t extra) = 0;
  virtual void allreduce_sum(std::vector<double>& values) = 0;
  virtual bool any(bool local) = 0;
  virtual void allreduce_max(std::vector<int64_t>& values) = 0;
  virtual void barrier() = 0;
  // Ends this process (and, where the channel can, the job) with exit_code;
  // called from the watchdog thread.
  [[noreturn]] virtual void end_job(int exit_code) = 0;
};

// World size 1, no MPI: every host operation is the identity.
std::unique_ptr<NcclHost> single_process_nccl_host();
#ifdef OFA_WITH_MPI
// Over an MPI communicator (its ranks, its descriptor checks).
std::unique_ptr<NcclHost> mpi_nccl_host(std::shared_ptr<MpiCommunicator> bootstrap);
#endif

class NcclCommunicator final : public Communicator {
 public:
  // Collective over host's ranks (see Setup above).
  explicit NcclCommunicator(std::unique_ptr<NcclHost> host, CommOptions opt = {});
#ifdef OFA_WITH_MPI
  NcclCommunicator(std::shared_ptr<MpiCommunicator> bootstrap, CommOptions opt = {})
      : NcclCommunicator(mpi_nccl_host(std::move(bootstrap)), opt) {}
#endif
  ~NcclCommunicator() override;  // stops the watchdog, ncclCommDestroy

  int64_t rank() const override { return host_->rank(); }
  int64_t world_size() const override { return host_->world_size(); }
  int64_t local_rank() const override { return host_->local_rank(); }
  const char* backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }
  const NcclHost& host() const { return *host_; }

  WorkPtr allreduce_async(const Tensor& t, ReduceOp op) override;
  WorkPtr broadcast_async(const Tensor& t, int64_t root) override;
  WorkPtr allgather_async(const Tensor& in, const Tensor& out) override;
  WorkPtr barrier_async() override;

  void allreduce_sum(std::vector<double>& values) override { host_->allreduce_sum(values); }
  bool any(bool local) override { return host_->any(local); }
  void allreduce_max(std::vector<int64_t>& values) override { host_->allreduce_max(values); }

  // The stream compute runs on (a cudaStream_t; by default the engine's
  // compute stream of device()).
  void set_compute_stream(void* stream) { compute_stream_ = stream; }
  void* compute_stream() const { return compute_stream_; }
  // Blocks the host until every queued operation has completed (watchdog on).
  void synchronize();

  // Shared with the Work handles and the watchdog.
  struct Pending;

 private:
  WorkPtr enqueue(OpCode op, const std::string& name, std::vector<Tensor> keep,
                  const std::function<int(void* stream)>& launch);
  void watchdog_loop();
  [[noreturn]] void fail(const std::string& message);

  std::unique_ptr<NcclHost> host_;
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
#endif  // OFA_WITH_CUDA
