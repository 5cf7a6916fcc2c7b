#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/cuda_context.h"

namespace ofa::dist {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
    default: break;
  }
  throw Error(str_cat("NcclCommunicator: no NCCL type for dtype ", dtype_name(t)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Average: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
  }
  return ncclSum;
}

ncclComm_t as_comm(void* c) { return static_cast<ncclComm_t>(c); }
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace

// ---------------------------------------------------------------- host channels

namespace {

class SingleProcessHost final : public NcclHost {
 public:
  int64_t rank() const override { return 0; }
  int64_t world_size() const override { return 1; }
  int64_t local_rank() const override { return 0; }
  int64_t local_size() const override { return 1; }
  const char* name() const override { return "single process"; }
  void broadcast_bytes(std::string&, int64_t) override {}
  void verify(OpCode, int64_t, DType, int64_t, int64_t, int64_t) override {}
  void allreduce_sum(std::vector<double>&) override {}
  bool any(bool local) override { return local; }
  void allreduce_max(std::vector<int64_t>&) override {}
  void barrier() override {}
  [[noreturn]] void end_job(int exit_code) override { std::_Exit(exit_code); }
};

#ifdef OFA_WITH_MPI
class MpiHost final : public NcclHost {
 public:
  explicit MpiHost(std::shared_ptr<MpiCommunicator> boot) : boot_(std::move(boot)) {
    OFA_CHECK(boot_ != nullptr, "NcclCommunicator: no MPI bootstrap communicator");
  }
  int64_t rank() const override { return boot_->rank(); }
  int64_t world_size() const override { return boot_->world_size(); }
  int64_t local_rank() const override { return boot_->local_rank(); }
  int64_t local_size() const override { return boot_->local_size(); }
  const char* name() const override { return "mpi"; }
  void broadcast_bytes(std::string& bytes, int64_t root) override { boot_->broadcast_bytes(bytes, root); }
  void verify(OpCode op, int64_t seq, DType dt, int64_t numel, int64_t root, int64_t extra) override {
    boot_->verify(op, seq, dt, numel, root, extra);
  }
  void allreduce_sum(std::vector<double>& values) override { boot_->allreduce_sum(values); }
  bool any(bool local) override { return boot_->any(local); }
  void allreduce_max(std::vector<int64_t>& values) override { boot_->allreduce_max(values); }
  void barrier() override { boot_->barrier(); }
  [[noreturn]] void end_job(int exit_code) override {
    // From the watchdog thread MPI may be called only under MPI_THREAD_MULTIPLE.
    int level = 0;
    MPI_Query_thread(&level);
    if (level == MPI_THREAD_MULTIPLE) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

 private:
  std::shared_ptr<MpiCommunicator> boot_;
};
#endif

}  // namespace

std::unique_ptr<NcclHost> single_process_nccl_host() { return std::make_unique<SingleProcessHost>(); }
#ifdef OFA_WITH_MPI
std::unique_ptr<NcclHost> mpi_nccl_host(std::shared_ptr<MpiCommunicator> bootstrap) {
  return std::make_unique<MpiHost>(std::move(bootstrap));
}
#endif

// ---------------------------------------------------------------- the communicator

struct NcclCommunicator::Pending {
  std::string name;
  double issued = 0;
  cudaEvent_t done = nullptr;
  std::vector<Tensor> keep;  // the buffers live until the operation completes
  std::atomic<bool> complete{false};
  ~Pending() {
    if (done) cudaEventDestroy(done);
  }
};

namespace {

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclCommunicator::Pending> p, void* compute_stream)
      : p_(std::move(p)), compute_(compute_stream) {}
  void wait() override {
    if (waited_) return;
    // The compute stream waits; the host does not (the watchdog watches).
    const cudaError_t e = cudaStreamWaitEvent(as_stream(compute_), p_->done, 0);
    if (e != cudaSuccess)
      throw Error(str_cat(p_->name, ": cudaStreamWaitEvent failed: ", cudaGetErrorName(e), " (",
                          cudaGetErrorString(e), ")"));
    waited_ = true;
  }
  bool test() override {
    if (p_->complete.load()) return true;
    const cudaError_t e = cudaEventQuery(p_->done);
    if (e == cudaSuccess) {
      p_->complete = true;
      return true;
    }
    if (e != cudaErrorNotReady)
      throw Error(str_cat(p_->name, ": cudaEventQuery failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
                          ")"));
    return false;
  }
  const std::string& name() const override { return p_->name; }

 private:
  std::shared_ptr<NcclCommunicator::Pending> p_;
  void* compute_;
  bool waited_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<NcclHost> host, CommOptions opt)
    : Communicator(opt), host_(std::move(host)) {
  OFA_CHECK(host_ != nullptr, "NcclCommunicator: no host channel (single_process_nccl_host() or mpi_nccl_host())");
  const std::string setup = "NCCL setup";
  OFA_CHECK(!cuda_emulated(), "rank ", rank(), ": ", setup,
            ": the engine runs the emulated CUDA backend (OFA_CUDA_EMULATION=1), which has no NCCL; "
            "use the mpi backend (a CPU device) or a GPU");
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  OFA_CHECK(ce == cudaSuccess && count > 0, "rank ", rank(), ": ", setup, ": no CUDA device visible (",
            ce == cudaSuccess ? "0 devices" : cudaGetErrorString(ce), "); the nccl backend needs one GPU per rank");
  OFA_CHECK(host_->local_size() <= count, "rank ", rank(), ": ", setup, ": ", host_->local_size(),
            " ranks run on this host but only ", count,
            " GPU(s) are visible: start one rank per GPU (e.g. mpirun -npernode ", count, ")");
  device_ = static_cast<int>(local_rank() % count);
  auto cuda = [&](cudaError_t e, const char* call) {
    OFA_CHECK(e == cudaSuccess, "rank ", rank(), ": ", setup, ": ", call, " failed: ", cudaGetErrorName(e), " (",
              cudaGetErrorString(e), ")");
  };
  cuda(cudaSetDevice(device_), "cudaSetDevice");
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank() == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    OFA_CHECK(r == ncclSuccess, "rank 0: ", setup, ": ncclGetUniqueId failed: ", ncclGetErrorString(r));
  }
  std::string bytes(reinterpret_cast<const char*>(&id), sizeof id);
  host_->broadcast_bytes(bytes, 0);
  OFA_CHECK(bytes.size() == sizeof id, "rank ", rank(), ": ", setup, ": the broadcast unique id has ", bytes.size(),
            " bytes, not ", sizeof id);
  std::memcpy(&id, bytes.data(), sizeof id);
  ncclComm_t c = nullptr;
  const ncclResult_t r = ncclCommInitRank(&c, static_cast<int>(world_size()), id, static_cast<int>(rank()));
  OFA_CHECK(r == ncclSuccess, "rank ", rank(), ": ", setup, ": ncclCommInitRank (", world_size(), " ranks, GPU ",
            device_, ") failed: ", ncclGetErrorString(r));
  comm_ = c;
  // The engine's compute stream of this GPU (non-blocking: the legacy default
  // stream would not be ordered against it).
  compute_stream_ = cuda_stream(device_);
  cudaStream_t s = nullptr;
  cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  comm_stream_ = s;
  watchdog_ = std::thread([this] { watchdog_loop(); });
}

NcclCommunicator::~NcclCommunicator() {
  stop_ = true;
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  // The collectives still queued read and write the tensors that pending_
  // keeps alive: let them finish (as long as the watchdog would have waited)
  // before the tensors go back to the allocator. One that never ends (a peer
  // lost) is aborted instead.
  bool drained = true;
  if (comm_stream_) {
    cudaSetDevice(device_);
    const double t0 = now_s();
    cudaError_t e;
    while ((e = cudaStreamQuery(as_stream(comm_stream_))) == cudaErrorNotReady && now_s() - t0 <= opt_.timeout_s)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (e != cudaSuccess) {
      drained = false;
      std::fprintf(stderr, "rank %lld: NCCL communicator closed with collectives %s (%s); aborting it\n",
                   static_cast<long long>(rank()), e == cudaErrorNotReady ? "still running after the timeout" : "failed",
                   cudaGetErrorName(e));
    }
  }
  if (comm_ && drained) ncclCommDestroy(as_comm(comm_));
  else if (comm_) ncclCommAbort(as_comm(comm_));
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_.clear();
  }
  if (comm_stream_) cudaStreamDestroy(as_stream(comm_stream_));
}

void NcclCommunicator::fail(const std::string& message) {
  std::fprintf(stderr, "%s; aborting the NCCL communicator and ending this process (exit status %d)\n",
               message.c_str(), kWatchdogExitCode);
  std::fflush(stderr);
  if (comm_) ncclCommAbort(as_comm(comm_));
  host_->end_job(kWatchdogExitCode);
  std::_Exit(kWatchdogExitCode);  // not reached (end_job does not return)
}

void NcclCommunicator::watchdog_loop() {
  cudaSetDevice(device_);
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::milliseconds(50));
    if (stop_) break;
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(as_comm(comm_), &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
      fail(str_cat("rank ", rank(), ": NCCL asynchronous error: ", ncclGetErrorString(async), " (",
                   ncclGetLastError(as_comm(comm_)), ")"));
    const double t = now_s();
    for (size_t i = 0; i < pending_.size();) {
      Pending& p = *pending_[i];
      const cudaError_t e = cudaEventQuery(p.done);
      if (e == cudaSuccess) {
        p.complete = true;
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      if (e != cudaErrorNotReady)
        fail(str_cat("rank ", rank(), ": ", p.name, ": cudaEventQuery failed: ", cudaGetErrorName(e), " (",
                     cudaGetErrorString(e), ")"));
      if (t - p.issued > opt_.timeout_s) {
        report_timeout(p.name, t - p.issued);
        fail(str_cat("rank ", rank(), ": ", p.name, " did not complete within ", opt_.timeout_s, " s"));
      }
      ++i;
    }
  }
}

WorkPtr NcclCommunicator::enqueue(OpCode op, const std::string& name, std::vector<Tensor> keep,
                                  const std::function<int(void*)>& launch) {
  auto p = std::make_shared<Pending>();
  p->name = name;
  p->keep = std::move(keep);
  auto cuda = [&](cudaError_t e, const char* call) {
    if (e != cudaSuccess)
      fail(str_cat("rank ", rank(), ": ", name, ": ", call, " failed: ", cudaGetErrorName(e), " (",
                   cudaGetErrorString(e), ")"));
  };
  cuda(cudaSetDevice(device_), "cudaSetDevice");
  // Communication after the compute queued so far.
  cudaEvent_t ready = nullptr;
  cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  cuda(cudaEventRecord(ready, as_stream(compute_stream_)), "cudaEventRecord");
  cuda(cudaStreamWaitEvent(as_stream(comm_stream_), ready, 0), "cudaStreamWaitEvent");
  cudaEventDestroy(ready);  // released once the wait has been satisfied
  const ncclResult_t r = static_cast<ncclResult_t>(launch(comm_stream_));
  if (r != ncclSuccess && r != ncclInProgress)
    fail(str_cat("rank ", rank(), ": ", name, ": ", op_code_name(op), " failed: ", ncclGetErrorString(r), " (",
                 ncclGetLastError(as_comm(comm_)), ")"));
  cuda(cudaEventCreateWithFlags(&p->done, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  cuda(cudaEventRecord(p->done, as_stream(comm_stream_)), "cudaEventRecord");
  p->issued = now_s();
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_.push_back(p);
  }
  return std::make_unique<NcclWork>(p, compute_stream_);
}

WorkPtr NcclCommunicator::allreduce_async(const Tensor& t, ReduceOp op) {
  const int64_t seq = next_seq();
  check_tensor(t, "t", "allreduce", seq);
  host_->verify(OpCode::Allreduce, seq, t.dtype(), t.numel(), 0, static_cast<int64_t>(op));
  void* p = t.raw_data();
  const size_t n = static_cast<size_t>(t.numel());
  const ncclDataType_t ty = nccl_type(t.dtype());
  const ncclRedOp_t ro = nccl_op(op);
  return enqueue(OpCode::Allreduce, str_cat("allreduce #", seq), {t}, [&](void* s) {
    return static_cast<int>(ncclAllReduce(p, p, n, ty, ro, as_comm(comm_), as_stream(s)));
  });
}

WorkPtr NcclCommunicator::broadcast_async(const Tensor& t, int64_t root) {
  const int64_t seq = next_seq();
  check_tensor(t, "t", "broadcast", seq);
  if (root < 0 || root >= world_size())
    throw CommError(where("broadcast", seq) + str_cat("root ", root, " is not a rank (world size ", world_size(), ")"));
  host_->verify(OpCode::Broadcast, seq, t.dtype(), t.numel(), root, 0);
  void* p = t.raw_data();
  const size_t n = static_cast<size_t>(t.numel());
  const ncclDataType_t ty = nccl_type(t.dtype());
  return enqueue(OpCode::Broadcast, str_cat("broadcast #", seq), {t}, [&](void* s) {
    return static_cast<int>(ncclBroadcast(p, p, n, ty, static_cast<int>(root), as_comm(comm_), as_stream(s)));
  });
}

WorkPtr NcclCommunicator::allgather_async(const Tensor& in, const Tensor& out) {
  const int64_t seq = next_seq();
  check_tensor(in, "in", "allgather", seq);
  check_tensor(out, "out", "allgather", seq);
  if (out.dtype() != in.dtype() || out.numel() != in.numel() * world_size())
    throw CommError(where("allgather", seq) + str_cat("'out' must hold world_size (", world_size(), ") x ", in.numel(),
                                                      " ", dtype_name(in.dtype()), " elements; it holds ", out.numel(),
                                                      " ", dtype_name(out.dtype())));
  host_->verify(OpCode::Allgather, seq, in.dtype(), in.numel(), 0, 0);
  const void* src = in.raw_data();
  void* dst = out.raw_data();
  const size_t n = static_cast<size_t>(in.numel());
  const ncclDataType_t ty = nccl_type(in.dtype());
  return enqueue(OpCode::Allgather, str_cat("allgather #", seq), {in, out}, [&](void* s) {
    return static_cast<int>(ncclAllGather(src, dst, n, ty, as_comm(comm_), as_stream(s)));
  });
}

WorkPtr NcclCommunicator::barrier_async() {
  // A barrier of the hosts (MPI); queued GPU work is not waited for (synchronize() does).
  const int64_t seq = next_seq();
  host_->barrier();
  return std::make_unique<CompletedWork>(str_cat("barrier #", seq));
}

void NcclCommunicator::synchronize() {
  const double t0 = now_s();
  for (;;) {
    const cudaError_t e = cudaStreamQuery(as_stream(comm_stream_));
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady)
      fail(str_cat("rank ", rank(), ": synchronize: cudaStreamQuery failed: ", cudaGetErrorName(e), " (",
                   cudaGetErrorString(e), ")"));
    if (now_s() - t0 > opt_.timeout_s) {
      report_timeout(str_cat("synchronize after #", last_seq()), now_s() - t0);
      fail(str_cat("rank ", rank(), ": synchronize did not complete within ", opt_.timeout_s, " s"));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

}  // namespace ofa::dist
