// Communicator: the collective operations of a distributed run, one interface
// over two backends (MpiCommunicator for CPU tensors, NcclCommunicator for
// CUDA tensors bootstrapped over MPI).
//
// Every operation works on whole tensors (dense, contiguous, typed): counts
// are element counts of the tensor's dtype, never byte counts. Every rank
// must issue the same operations in the same order with the same dtypes and
// element counts; each operation gets the next sequence number (1, 2, ...)
// of this communicator, and every error names the rank, the operation and
// its number ("rank 1: allreduce #17: ..."). With verify (the default) each
// operation first exchanges a small descriptor (sequence number, operation,
// dtype, element count, root) so that a mismatch between ranks is an
// ofa::Error naming what each rank called instead of a hang or a corrupt
// result.
//
// Asynchronous forms return a Work; wait() on it before touching the tensor.
// An operation that has not completed within timeout_s of waiting for it
// (a rank died or hangs) prints "rank R: <op> #seq did not complete within T
// s" and ends the process with kWatchdogExitCode (MPI_Abort: the launcher
// then ends every rank).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ofa::dist {

// The exit status of a process that a communicator's watchdog ended.
constexpr int kWatchdogExitCode = 124;

enum class ReduceOp { Sum, Average, Max };
const char* reduce_op_name(ReduceOp op);

// A collective that was mismatched between ranks or given unusable tensors.
class CommError : public Error {
 public:
  using Error::Error;
};

// The handle of an asynchronous operation.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the operation's result may be used by the caller (for a
  // CUDA backend: until work queued afterwards on the compute stream sees it).
  // Idempotent. Subject to the watchdog.
  virtual void wait() = 0;
  // True once the operation has completed (does not block).
  virtual bool test() = 0;
  virtual const std::string& name() const = 0;  // "allreduce #17"
};
using WorkPtr = std::unique_ptr<Work>;

// A Work that is already complete (single-rank shortcuts).
class CompletedWork final : public Work {
 public:
  explicit CompletedWork(std::string name) : name_(std::move(name)) {}
  void wait() override {}
  bool test() override { return true; }
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
};

struct CommOptions {
  double timeout_s = 300;  // watchdog: longest wait for one operation
  bool verify = true;      // exchange a descriptor before every operation
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  virtual int64_t local_rank() const = 0;  // rank among the processes of this host
  virtual const char* backend() const = 0;  // "mpi", "nccl"
  virtual Device device() const = 0;        // where its tensors must live

  // ---- asynchronous collectives
  // In place: every rank's `t` becomes the element-wise sum / average / max
  // over ranks (average: the sum divided by world_size, in t's dtype; for
  // I64 the quotient is truncated towards zero).
  virtual WorkPtr allreduce_async(const Tensor& t, ReduceOp op) = 0;
  // In place: every rank's `t` becomes root's.
  virtual WorkPtr broadcast_async(const Tensor& t, int64_t root) = 0;
  // `out` (world_size * in.numel() elements, in's dtype) gets rank r's `in`
  // at elements [r * n, (r + 1) * n).
  virtual WorkPtr allgather_async(const Tensor& in, const Tensor& out) = 0;
  virtual WorkPtr barrier_async() = 0;

  // ---- blocking forms
  void allreduce(const Tensor& t, ReduceOp op = ReduceOp::Sum) { allreduce_async(t, op)->wait(); }
  void broadcast(const Tensor& t, int64_t root = 0) { broadcast_async(t, root)->wait(); }
  void allgather(const Tensor& in, const Tensor& out) { allgather_async(in, out)->wait(); }
  Tensor allgather(const Tensor& in);  // returns [world_size, *in.shape()]
  void barrier() { barrier_async()->wait(); }

  // ---- host values (metrics, statistics, decisions); blocking
  // Element-wise sum over ranks, in place, in float64 (every rank passes
  // the same length).
  virtual void allreduce_sum(std::vector<double>& values) = 0;
  // True on every rank when `local` is true on any.
  virtual bool any(bool local) = 0;
  // Element-wise max over ranks, in place.
  virtual void allreduce_max(std::vector<int64_t>& values) = 0;

  const CommOptions& options() const { return opt_; }
  void set_timeout_s(double s);
  void set_verify(bool v) { opt_.verify = v; }
  // Sequence number of the last operation issued (0 before the first).
  int64_t last_seq() const { return seq_; }

 protected:
  explicit Communicator(CommOptions opt) : opt_(opt) {}
  int64_t next_seq() { return ++seq_; }
  // "rank R: op #seq: " for messages.
  std::string where(const std::string& op, int64_t seq) const;
  // Throws CommError (named) unless `t` is defined, dense and contiguous,
  // on device(), of a dtype the backend reduces (F32, F64, I64).
  void check_tensor(const Tensor& t, const char* arg, const std::string& op, int64_t seq) const;
  // Prints the watchdog's message on stderr (flushed).
  void report_timeout(const std::string& op_name, double waited_s) const;

  CommOptions opt_;

 private:
  int64_t seq_ = 0;
};

// The descriptor each rank sends when verify is on; compare_descriptors
// returns "" when all agree, else what each rank called.
struct OpDescriptor {
  int64_t seq = 0, op = 0, dtype = 0, numel = 0, root = 0, extra = 0;
  static constexpr int kWords = 6;
};
enum class OpCode : int64_t { Allreduce = 1, Broadcast = 2, Allgather = 3, Barrier = 4, HostSum = 5, HostAny = 6, HostMax = 7 };
const char* op_code_name(OpCode op);
std::string compare_descriptors(const std::vector<int64_t>& all_words, int64_t world_size);

// ---- the launcher's environment (no MPI needed)
// True when an MPI launcher (mpirun / mpiexec / srun) started this process:
// OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK or SLURM_NTASKS is set.
bool launched_by_mpi();
// The world size the launcher announces (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
// SLURM_NTASKS), or 1 when none is set.
int64_t launcher_world_size();
// This process's rank as the launcher announces it (OMPI_COMM_WORLD_RANK,
// PMI_RANK, PMIX_RANK, SLURM_PROCID), or 0.
int64_t launcher_rank();
// The local rank from OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or
// SLURM_LOCALID; -1 when none is set.
int64_t launcher_local_rank();

}  // namespace ofa::dist
