#include "distributed/communicator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ofa::dist {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Average: return "average";
    case ReduceOp::Max: return "max";
  }
  return "?";
}

const char* op_code_name(OpCode op) {
  switch (op) {
    case OpCode::Allreduce: return "allreduce";
    case OpCode::Broadcast: return "broadcast";
    case OpCode::Allgather: return "allgather";
    case OpCode::Barrier: return "barrier";
    case OpCode::HostSum: return "allreduce_sum(host)";
    case OpCode::HostAny: return "any(host)";
    case OpCode::HostMax: return "allreduce_max(host)";
  }
  return "?";
}

Tensor Communicator::allgather(const Tensor& in) {
  Shape s = in.shape();
  s.insert(s.begin(), world_size());
  Tensor out = empty(s, in.dtype(), in.device());
  allgather(in, out);
  return out;
}

void Communicator::set_timeout_s(double s) {
  OFA_CHECK(std::isfinite(s) && s > 0, "communicator: the timeout must be a number of seconds > 0 (got ", s, ")");
  opt_.timeout_s = s;
}

std::string Communicator::where(const std::string& op, int64_t seq) const {
  return str_cat("rank ", rank(), ": ", op, " #", seq, ": ");
}

void Communicator::check_tensor(const Tensor& t, const char* arg, const std::string& op, int64_t seq) const {
  if (!t.defined()) throw CommError(where(op, seq) + str_cat("argument '", arg, "' is an undefined tensor"));
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64 && t.dtype() != DType::I64)
    throw CommError(where(op, seq) + str_cat("argument '", arg, "' has dtype ", dtype_name(t.dtype()), "; the ",
                                             backend(), " communicator handles F32, F64 and I64"));
  if (t.device() != device())
    throw CommError(where(op, seq) + str_cat("argument '", arg, "' lives on ", t.device().str(), " but the ",
                                             backend(), " communicator works on ", device().str(),
                                             " tensors (copy it there first)"));
  if (!t.is_contiguous())
    throw CommError(where(op, seq) + str_cat("argument '", arg, "' (shape ", shape_str(t.shape()),
                                             ") is not contiguous; pass t.contiguous() and copy the result back"));
}

void Communicator::report_timeout(const std::string& op_name, double waited_s) const {
  std::fprintf(stderr,
               "rank %lld: %s did not complete within %g s (waited %.1f s): a rank died or hangs; ending this "
               "process (exit status %d); the last checkpoint is intact, run the same command with --resume\n",
               static_cast<long long>(rank()), op_name.c_str(), opt_.timeout_s, waited_s, kWatchdogExitCode);
  std::fflush(stderr);
}

std::string compare_descriptors(const std::vector<int64_t>& w, int64_t world_size) {
  const int K = OpDescriptor::kWords;
  OFA_CHECK(static_cast<int64_t>(w.size()) == world_size * K, "compare_descriptors: ", w.size(), " words for ",
            world_size, " ranks");
  bool same = true;
  for (int64_t r = 1; r < world_size && same; ++r)
    for (int k = 0; k < K; ++k)
      if (w[static_cast<size_t>(r * K + k)] != w[static_cast<size_t>(k)]) same = false;
  if (same) return "";
  std::string s = "the ranks disagree on this operation (every rank must call the same operations in the same "
                  "order, with the same dtype and element count):";
  for (int64_t r = 0; r < world_size; ++r) {
    const int64_t* d = &w[static_cast<size_t>(r * K)];
    const auto op = static_cast<OpCode>(d[1]);
    s += str_cat(" rank ", r, " called ", op_code_name(op), " #", d[0]);
    if (op == OpCode::Allreduce || op == OpCode::Broadcast || op == OpCode::Allgather)
      s += str_cat(" of ", d[3], " ", d[2] >= 0 && d[2] <= 4 ? dtype_name(static_cast<DType>(d[2])) : "?",
                   " elements");
    else if (op != OpCode::Barrier)
      s += str_cat(" of ", d[3], " values");
    if (op == OpCode::Broadcast) s += str_cat(" from root ", d[4]);
    if (op == OpCode::Allreduce) s += str_cat(" (", d[5] == 0 ? "sum" : d[5] == 1 ? "average" : "max", ")");
    s += r + 1 < world_size ? ";" : "";
  }
  return s;
}

// ---------------------------------------------------------------- launcher environment

namespace {
int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  return end && *end == '\0' ? static_cast<int64_t>(x) : fallback;
}
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}
}  // namespace

bool launched_by_mpi() {
  // SLURM_NTASKS alone is also set inside a batch script; srun's tasks also carry SLURM_STEP_ID.
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK") ||
         (env_set("SLURM_NTASKS") && env_set("SLURM_STEP_ID"));
}

int64_t launcher_world_size() {
  int64_t n = env_int("OMPI_COMM_WORLD_SIZE", -1);
  if (n < 0) n = env_int("PMI_SIZE", -1);
  if (n < 0 && env_set("SLURM_STEP_ID")) n = env_int("SLURM_NTASKS", -1);
  return n > 0 ? n : 1;
}

int64_t launcher_rank() {
  int64_t r = env_int("OMPI_COMM_WORLD_RANK", -1);
  if (r < 0) r = env_int("PMI_RANK", -1);
  if (r < 0) r = env_int("PMIX_RANK", -1);
  if (r < 0 && env_set("SLURM_STEP_ID")) r = env_int("SLURM_PROCID", -1);
  return r >= 0 ? r : 0;
}

int64_t launcher_local_rank() {
  int64_t r = env_int("OMPI_COMM_WORLD_LOCAL_RANK", -1);
  if (r < 0) r = env_int("MPI_LOCALRANKID", -1);
  if (r < 0 && env_set("SLURM_STEP_ID")) r = env_int("SLURM_LOCALID", -1);
  return r;
}

}  // namespace ofa::dist
