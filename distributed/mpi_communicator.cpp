#include "distributed/mpi_communicator.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

namespace ofa::dist {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    default: break;
  }
  throw Error(str_cat("MpiCommunicator: no MPI type for dtype ", dtype_name(t)));
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Max ? MPI_MAX : MPI_SUM; }

// The sum divided by n, in the tensor's own dtype (I64: truncated).
void divide_in_place(const Tensor& t, int64_t n) {
  const int64_t m = t.numel();
  switch (t.dtype()) {
    case DType::F32: {
      float* p = t.data<float>();
      const float d = static_cast<float>(n);
      for (int64_t i = 0; i < m; ++i) p[i] /= d;
      break;
    }
    case DType::F64: {
      double* p = t.data<double>();
      const double d = static_cast<double>(n);
      for (int64_t i = 0; i < m; ++i) p[i] /= d;
      break;
    }
    case DType::I64: {
      int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < m; ++i) p[i] /= n;
      break;
    }
    default: break;
  }
}

// Largest element count of one MPI call (counts are int).
constexpr int64_t kMaxCount = INT_MAX / 2;

class MpiWork final : public Work {
 public:
  MpiWork(MpiCommunicator* comm, std::string name, std::vector<Tensor> keep, std::function<void()> on_done = {})
      : comm_(comm), name_(std::move(name)), keep_(std::move(keep)), on_done_(std::move(on_done)) {}
  ~MpiWork() override {
    // A handle dropped unwaited still completes before its buffer can go.
    if (!done_) wait();
  }
  void wait() override {
    if (done_) return;
    comm_->wait_requests(reqs_, name_);
    done_ = true;
    if (on_done_) on_done_();
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    comm_->check_mpi(MPI_Testall(static_cast<int>(reqs_.size()), reqs_.data(), &flag, MPI_STATUSES_IGNORE),
                     "MPI_Testall", name_);
    if (flag) {
      done_ = true;
      if (on_done_) on_done_();
    }
    return done_;
  }
  const std::string& name() const override { return name_; }
  std::vector<MPI_Request> reqs_;

 private:
  MpiCommunicator* comm_;
  std::string name_;
  std::vector<Tensor> keep_;  // the buffers stay alive until the operation completes
  std::function<void()> on_done_;
  bool done_ = false;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, CommOptions opt) : Communicator(opt) {
  int inited = 0;
  MPI_Initialized(&inited);
  OFA_CHECK(inited, "MpiCommunicator: MPI is not initialised (MPI_Init_thread first, e.g. through MpiSession)");
  int r = 0, n = 1;
  MPI_Comm_rank(comm, &r);
  MPI_Comm_size(comm, &n);
  rank_ = r;
  size_ = n;
  check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup", "communicator setup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  // The host's processes: for the local rank when the launcher does not say.
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, r, MPI_INFO_NULL, &node), "MPI_Comm_split_type",
            "communicator setup");
  int lr = 0, ln = 1;
  MPI_Comm_rank(node, &lr);
  MPI_Comm_size(node, &ln);
  MPI_Comm_free(&node);
  local_size_ = ln;
  const int64_t env = launcher_local_rank();
  local_rank_ = env >= 0 && n == launcher_world_size() ? env : lr;
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::check_mpi(int rc, const char* call, const std::string& op_name) const {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::fprintf(stderr, "rank %lld: %s: %s failed: %s; ending the job\n", static_cast<long long>(rank_),
               op_name.c_str(), call, msg);
  std::fflush(stderr);
  MPI_Abort(comm_ != MPI_COMM_NULL ? comm_ : MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

void MpiCommunicator::wait_requests(std::vector<MPI_Request>& reqs, const std::string& op_name) {
  if (reqs.empty()) return;
  const double t0 = now_s();
  int64_t polls = 0;
  for (;;) {
    int flag = 0;
    check_mpi(MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, MPI_STATUSES_IGNORE), "MPI_Testall",
              op_name);
    if (flag) return;
    ++polls;
    const double waited = now_s() - t0;
    if (waited > opt_.timeout_s) {
      report_timeout(op_name, waited);
      MPI_Abort(comm_, kWatchdogExitCode);
      std::_Exit(kWatchdogExitCode);
    }
    // Yield for the first milliseconds (latency), then sleep (ranks share cores).
    if (waited < 2e-3 || polls < 64) sched_yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(waited < 0.1 ? 50 : 500));
  }
}

void MpiCommunicator::verify(OpCode op, int64_t seq, DType dt, int64_t numel, int64_t root, int64_t extra) {
  if (!opt_.verify || size_ == 1) return;
  const int K = OpDescriptor::kWords;
  int64_t mine[K] = {seq, static_cast<int64_t>(op), static_cast<int64_t>(dt), numel, root, extra};
  std::vector<int64_t> all(static_cast<size_t>(size_ * K));
  const std::string name = str_cat(op_code_name(op), " #", seq, " (descriptor check)");
  std::vector<MPI_Request> req(1);
  check_mpi(MPI_Iallgather(mine, K, MPI_INT64_T, all.data(), K, MPI_INT64_T, comm_, &req[0]), "MPI_Iallgather", name);
  wait_requests(req, name);
  const std::string diff = compare_descriptors(all, size_);
  if (!diff.empty()) throw CommError(where(op_code_name(op), seq) + diff);
}

WorkPtr MpiCommunicator::allreduce_async(const Tensor& t, ReduceOp op) {
  const int64_t seq = next_seq();
  const char* opn = "allreduce";
  check_tensor(t, "t", opn, seq);
  verify(OpCode::Allreduce, seq, t.dtype(), t.numel(), 0, static_cast<int64_t>(op));
  const std::string name = str_cat(opn, " #", seq);
  std::function<void()> done;
  if (op == ReduceOp::Average && size_ > 1) done = [t, n = size_] { divide_in_place(t, n); };
  auto w = std::make_unique<MpiWork>(this, name, std::vector<Tensor>{t}, std::move(done));
  if (size_ > 1) {
    char* p = static_cast<char*>(t.raw_data());
    const size_t es = dtype_size(t.dtype());
    for (int64_t off = 0; off < t.numel(); off += kMaxCount) {
      const int64_t n = std::min(kMaxCount, t.numel() - off);
      MPI_Request r;
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, p + static_cast<size_t>(off) * es, static_cast<int>(n),
                               mpi_type(t.dtype()), mpi_op(op), comm_, &r),
                "MPI_Iallreduce", name);
      w->reqs_.push_back(r);
    }
  }
  return w;
}

WorkPtr MpiCommunicator::broadcast_async(const Tensor& t, int64_t root) {
  const int64_t seq = next_seq();
  const char* opn = "broadcast";
  check_tensor(t, "t", opn, seq);
  if (root < 0 || root >= size_)
    throw CommError(where(opn, seq) + str_cat("root ", root, " is not a rank (world size ", size_, ")"));
  verify(OpCode::Broadcast, seq, t.dtype(), t.numel(), root, 0);
  const std::string name = str_cat(opn, " #", seq);
  auto w = std::make_unique<MpiWork>(this, name, std::vector<Tensor>{t});
  if (size_ > 1) {
    char* p = static_cast<char*>(t.raw_data());
    const size_t es = dtype_size(t.dtype());
    for (int64_t off = 0; off < t.numel(); off += kMaxCount) {
      const int64_t n = std::min(kMaxCount, t.numel() - off);
      MPI_Request r;
      check_mpi(MPI_Ibcast(p + static_cast<size_t>(off) * es, static_cast<int>(n), mpi_type(t.dtype()),
                           static_cast<int>(root), comm_, &r),
                "MPI_Ibcast", name);
      w->reqs_.push_back(r);
    }
  }
  return w;
}

WorkPtr MpiCommunicator::allgather_async(const Tensor& in, const Tensor& out) {
  const int64_t seq = next_seq();
  const char* opn = "allgather";
  check_tensor(in, "in", opn, seq);
  check_tensor(out, "out", opn, seq);
  if (out.dtype() != in.dtype() || out.numel() != in.numel() * size_)
    throw CommError(where(opn, seq) + str_cat("'out' must hold world_size (", size_, ") x ", in.numel(), " ",
                                              dtype_name(in.dtype()), " elements; it holds ", out.numel(), " ",
                                              dtype_name(out.dtype()), " (shape ", shape_str(out.shape()), ")"));
  if (in.numel() > kMaxCount)
    throw CommError(where(opn, seq) + str_cat(in.numel(), " elements per rank exceed the ", kMaxCount,
                                              " of one MPI call; gather smaller pieces"));
  verify(OpCode::Allgather, seq, in.dtype(), in.numel(), 0, 0);
  const std::string name = str_cat(opn, " #", seq);
  auto w = std::make_unique<MpiWork>(this, name, std::vector<Tensor>{in, out});
  if (size_ == 1) {
    std::memcpy(out.raw_data(), in.raw_data(), static_cast<size_t>(in.numel()) * dtype_size(in.dtype()));
    return w;
  }
  MPI_Request r;
  const MPI_Datatype ty = mpi_type(in.dtype());
  check_mpi(MPI_Iallgather(in.raw_data(), static_cast<int>(in.numel()), ty, out.raw_data(),
                           static_cast<int>(in.numel()), ty, comm_, &r),
            "MPI_Iallgather", name);
  w->reqs_.push_back(r);
  return w;
}

WorkPtr MpiCommunicator::barrier_async() {
  const int64_t seq = next_seq();
  verify(OpCode::Barrier, seq, DType::I64, 0, 0, 0);
  const std::string name = str_cat("barrier #", seq);
  auto w = std::make_unique<MpiWork>(this, name, std::vector<Tensor>{});
  if (size_ > 1) {
    MPI_Request r;
    check_mpi(MPI_Ibarrier(comm_, &r), "MPI_Ibarrier", name);
    w->reqs_.push_back(r);
  }
  return w;
}

void MpiCommunicator::host_allreduce(OpCode op, DType dt, void* data, int64_t n, MPI_Datatype type, MPI_Op mpi_op) {
  const int64_t seq = next_seq();
  verify(op, seq, dt, n, 0, 0);
  if (size_ == 1 || n == 0) return;
  const std::string name = str_cat(op_code_name(op), " #", seq);
  OFA_CHECK(n <= INT_MAX, "rank ", rank_, ": ", name, ": ", n, " values exceed one MPI call's count");
  std::vector<MPI_Request> req(1);
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), type, mpi_op, comm_, &req[0]), "MPI_Iallreduce",
            name);
  wait_requests(req, name);
}

void MpiCommunicator::allreduce_sum(std::vector<double>& values) {
  host_allreduce(OpCode::HostSum, DType::F64, values.data(), static_cast<int64_t>(values.size()), MPI_DOUBLE, MPI_SUM);
}

bool MpiCommunicator::any(bool local) {
  int v = local ? 1 : 0;
  host_allreduce(OpCode::HostAny, DType::I64, &v, 1, MPI_INT, MPI_LOR);
  return v != 0;
}

void MpiCommunicator::allreduce_max(std::vector<int64_t>& values) {
  host_allreduce(OpCode::HostMax, DType::I64, values.data(), static_cast<int64_t>(values.size()), MPI_INT64_T,
                 MPI_MAX);
}

void MpiCommunicator::broadcast_bytes(std::string& bytes, int64_t root) {
  Tensor len = from_vector<int64_t>({static_cast<int64_t>(bytes.size())}, {1});
  broadcast(len, root);
  const int64_t n = len.data<int64_t>()[0];
  // Bytes travel as int64 words (the communicator's dtypes), zero-padded.
  Tensor words = zeros({(n + 7) / 8}, DType::I64);
  if (rank_ == root && n > 0) std::memcpy(words.raw_data(), bytes.data(), static_cast<size_t>(n));
  if (words.numel() > 0) broadcast(words, root);
  bytes.assign(static_cast<const char*>(words.raw_data()), static_cast<size_t>(n));
}

// ---------------------------------------------------------------- MpiSession

MpiSession::MpiSession(int* argc, char*** argv) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
      std::fprintf(stderr, "MPI_Init_thread failed (error %d): is this process started by mpirun/srun?\n", rc);
      std::exit(1);
    }
    owns_ = true;
  }
  int r = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  rank_ = r;
  size_ = n;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

void MpiSession::abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace ofa::dist
