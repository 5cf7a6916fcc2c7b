#include "benchmarks/bench_util.h"

#include "engine/cuda_context.h"
#include "engine/threads.h"

#include <cblas.h>
#include <fcntl.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

#ifndef OFA_SOURCE_DIR
#error "OFA_SOURCE_DIR must be defined (benchmarks/CMakeLists.txt sets it)"
#endif

namespace ofa::bench {

int64_t parse_int_arg(const std::string& flag, const std::string& v, int64_t min) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno == ERANGE || x < min)
    throw UsageError(flag + ": expected an integer >= " + std::to_string(min) + ", got '" + v + "'");
  return x;
}

double Timing::median_ms() const {
  if (samples_ms.empty()) return std::nan("");
  std::vector<double> s = samples_ms;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

double Timing::min_ms() const {
  if (samples_ms.empty()) return std::nan("");
  return *std::min_element(samples_ms.begin(), samples_ms.end());
}

bool real_gpu() { return cuda_available() && !cuda_emulated(); }

Device parse_device(const std::string& v) {
  Device d = Device::cpu();
  if (v == "cuda") d = Device::cuda(0);
  else if (v.rfind("cuda:", 0) == 0) d = Device::cuda(static_cast<int>(parse_int_arg("--device cuda:N", v.substr(5), 0)));
  else if (v != "cpu") throw UsageError("--device: expected cpu, cuda or cuda:N, got '" + v + "'");
  if (d.is_cuda()) {
    const int n = cuda_device_count();
    OFA_CHECK(n > 0, "--device ", v, ": no CUDA device is visible (no GPU, or a build without nvcc; "
              "OFA_CUDA_EMULATION=1 runs the CUDA kernels on the CPU emulation). Use --device cpu.");
    OFA_CHECK(d.index < n, "--device ", v, ": there are ", n, " CUDA devices (cuda:0 .. cuda:", n - 1, ")");
  }
  return d;
}

std::string torch_device(Device d) { return d.is_cuda() ? "cuda:" + std::to_string(d.index) : "cpu"; }

std::string device_description(Device d, int64_t threads) {
  if (d.is_cpu()) return cpu_model() + ", threads " + std::to_string(threads) + "; OpenBLAS " + openblas_build();
  const kernels::DeviceProps p = cuda_backend().properties(d.index);
  std::string s = p.name + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
                  std::to_string(p.sm_count) + " SMs, " + cell("%.0f", double(p.total_memory) / (1 << 30)) +
                  " GiB), backend " + cuda_backend().name();
  if (cuda_emulated()) s += " -- the CUDA emulation on the CPU: these times say nothing about a GPU";
  return s;
}

void synchronize(Device d) {
  if (d.is_cuda()) cuda_synchronize(d.index);
}

StreamTimer::StreamTimer(int device) : device_(device) {
  kernels::CudaBackend& be = cuda_backend();
  cuda_stream(device);  // makes the device current before its events are made
  start_ = be.event_create(true);
  stop_ = be.event_create(true);
}

StreamTimer::~StreamTimer() {
  kernels::CudaBackend& be = cuda_backend();
  be.event_destroy(static_cast<kernels::Event>(start_));
  be.event_destroy(static_cast<kernels::Event>(stop_));
}

void StreamTimer::start() { cuda_backend().event_record(static_cast<kernels::Event>(start_), cuda_stream(device_)); }

double StreamTimer::stop_ms() {
  kernels::CudaBackend& be = cuda_backend();
  const auto a = static_cast<kernels::Event>(start_), b = static_cast<kernels::Event>(stop_);
  be.event_record(b, cuda_stream(device_));
  be.event_synchronize(b);
  return be.event_elapsed_ms(a, b);
}

Json timing_json(const Timing& t) {
  Json j = Json::object();
  j["median_ms"] = t.median_ms();
  j["min_ms"] = t.min_ms();
  j["samples_ms"] = t.samples_ms;
  return j;
}

Timing timing_of(const Json& samples_ms) {
  Timing t;
  t.samples_ms = samples_ms.get<std::vector<double>>();
  return t;
}

bool all_finite(const Tensor& t) {
  if (!t.defined()) return false;
  for (float v : t.to_vector<float>())
    if (!std::isfinite(v)) return false;
  return true;
}

std::vector<ReplyCase> reply_cases(const Json& reply, const std::vector<std::string>& names, const char* first_key,
                                   const char* second_key) {
  const Json& items = reply.at("cases");
  OFA_CHECK(items.size() == names.size(), "expected ", names.size(), " cases, got ", items.size());
  std::vector<ReplyCase> out;
  for (size_t i = 0; i < items.size(); ++i) {
    const Json& c = items[i];
    const std::string name = c.at("name").get<std::string>();
    OFA_CHECK(name == names[i], "case ", i, " is ", name, ", expected ", names[i]);
    ReplyCase r;
    if (c.contains("error")) {
      r.error = c.at("error").get<std::string>();
    } else {
      r.first = timing_of(c.at(first_key));
      r.second = timing_of(c.at(second_key));
      r.finite = c.at("finite").get<bool>();
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = line.find_first_not_of(" \t", colon + 1);
        return b == std::string::npos ? std::string("unknown CPU") : line.substr(b);
      }
    }
  }
  return "unknown CPU";
}

std::string openblas_build() {
  const int par = openblas_get_parallel();
  const char* model = par == OPENBLAS_OPENMP ? "OpenMP" : par == OPENBLAS_THREAD ? "pthreads" : "sequential";
  std::string s = openblas_get_config();
  while (!s.empty() && s.back() == ' ') s.pop_back();
  s += std::string(" (core ") + openblas_get_corename() + ", " + model + ", " +
       std::to_string(openblas_get_num_threads()) + " threads)";
  // An environment that pins the kernel set changes GEMM speed a lot: say so.
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced && *forced) s += std::string("; core set by $OPENBLAS_CORETYPE=") + forced;
  return s;
}

void set_threads(int64_t n) { set_compute_threads(n); }

int64_t default_threads() { return omp_get_max_threads(); }

std::string default_python() {
  const char* env = std::getenv("OFA_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

namespace {

// A file under $TMPDIR (or /tmp), removed with the object.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    path = std::string(dir && *dir ? dir : "/tmp") + "/ofa_bench.XXXXXX";
    fd = mkstemp(path.data());
  }
  ~TempFile() {
    if (fd >= 0) {
      close(fd);
      unlink(path.c_str());
    }
  }
  std::string read_all() const {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
};

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t w = write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                          const std::vector<std::pair<std::string, std::string>>& env) {
  ProcessResult r;
  // stdin and stderr go through files, stdout through a pipe: no deadlock
  // whatever the child reads or writes first.
  TempFile in, err;
  if (in.fd < 0 || err.fd < 0) {
    r.error = std::string("cannot create a temporary file: ") + std::strerror(errno);
    return r;
  }
  if (!write_all(in.fd, input) || lseek(in.fd, 0, SEEK_SET) != 0) {
    r.error = std::string("cannot write a temporary file: ") + std::strerror(errno);
    return r;
  }
  int out_pipe[2];
  int exec_pipe[2];  // closed on a successful exec; carries errno otherwise
  if (pipe(out_pipe) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    r.error = std::string("pipe failed: ") + std::strerror(errno);
    return r;
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    r.error = std::string("fork failed: ") + std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    dup2(in.fd, 0);
    dup2(out_pipe[1], 1);
    dup2(err.fd, 2);
    close(out_pipe[0]);
    close(out_pipe[1]);
    close(exec_pipe[0]);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    const int e = errno;
    (void)!write(exec_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(out_pipe[1]);
  close(exec_pipe[1]);
  int exec_errno = 0;
  const bool exec_failed = read(exec_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  close(exec_pipe[0]);
  char buf[65536];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    r.out.append(buf, static_cast<size_t>(n));
  }
  close(out_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.err = err.read_all();
  if (exec_failed) {
    r.error = "cannot run " + argv[0] + ": " + std::strerror(exec_errno);
    return r;
  }
  r.started = true;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

double geometric_mean(const std::vector<double>& v) {
  double s = 0.0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x) && x > 0) {
      s += std::log(x);
      ++n;
    }
  return n ? std::exp(s / static_cast<double>(n)) : std::nan("");
}

CompetitorReply run_competitor(const std::string& python, const std::string& script, const Json& request,
                               const std::vector<std::pair<std::string, std::string>>& env) {
  CompetitorReply r;
  r.script = std::string(OFA_SOURCE_DIR) + "/benchmarks/" + script;
  struct stat st;
  if (stat(r.script.c_str(), &st) != 0) {
    r.why = "the competitor script " + r.script + " is missing";
    return r;
  }
  ProcessResult p = run_process({python, r.script}, request.dump(), env);
  if (!p.started) {
    r.why = p.error;
    return r;
  }
  try {
    r.reply = Json::parse(p.out);
  } catch (const Json::parse_error&) {
    const std::string tail = last_line(p.err);
    r.why = python + " " + r.script + " exited with status " + std::to_string(p.exit_code) +
            (tail.empty() ? " without JSON output" : ": " + tail);
    return r;
  }
  if (r.reply.is_object() && r.reply.contains("error")) {
    const Json& e = r.reply.at("error");
    r.why = e.is_string() ? e.get<std::string>() : e.dump();
    return r;
  }
  r.ok = true;
  return r;
}

std::vector<std::pair<std::string, std::string>> thread_env(int64_t threads) {
  const std::string n = std::to_string(threads);
  return {{"OMP_NUM_THREADS", n}, {"OPENBLAS_NUM_THREADS", n}, {"MKL_NUM_THREADS", n}};
}

std::string last_line(const std::string& s) {
  const size_t e = s.find_last_not_of(" \n\r\t");
  if (e == std::string::npos) return "";
  const size_t nl = s.rfind('\n', e);
  const size_t b = nl == std::string::npos ? 0 : nl + 1;
  return s.substr(b, e - b + 1);
}

std::string cell(const char* format, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

WeightView centre_crop(int64_t C, int64_t k, int64_t full) {
  const int64_t o = (full - k) / 2;
  return {{0, C}, {0, 1}, {o, k}, {o, k}};
}

WeightView leading(int64_t out, int64_t in) { return {{0, out}, {0, in}, {0, 1}, {0, 1}}; }

Tensor view_of(const Tensor& full, const WeightView& view) {
  Tensor w = full;
  for (size_t d = 0; d < view.size(); ++d) w = w.narrow(static_cast<int64_t>(d), view[d][0], view[d][1]);
  return w;
}

Shape view_shape(const Shape& full, const WeightView& view) {
  if (view.empty()) return full;
  Shape s;
  for (const auto& v : view) s.push_back(v[1]);
  return s;
}

}  // namespace ofa::bench
