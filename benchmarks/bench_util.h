// Shared by the ofa_bench subcommands: timing statistics (host clock, or
// events on a CUDA device's compute stream), machine description (CPU model,
// OpenBLAS build), running a competitor script, weight views, table cells.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/common.h"
#include "engine/tensor.h"

namespace ofa::bench {

// Objects keep their keys in insertion order (readable --json reports).
using Json = nlohmann::ordered_json;

// A bad command line: main prints it and exits with status 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Parses a command-line integer >= min; UsageError naming the flag otherwise.
int64_t parse_int_arg(const std::string& flag, const std::string& v, int64_t min);

// Wall times of the timed runs of one measurement, in milliseconds.
struct Timing {
  std::vector<double> samples_ms;
  double median_ms() const;
  double min_ms() const;
};

// Runs fn `warmup` times untimed, then `repeat` times, each timed alone with
// std::chrono::steady_clock. `before` runs untimed ahead of every call (e.g.
// dropping the gradients of the previous run).
template <class Before, class Fn>
Timing time_runs(int64_t warmup, int64_t repeat, Before&& before, Fn&& fn) {
  for (int64_t i = 0; i < warmup; ++i) {
    before();
    fn();
  }
  Timing t;
  t.samples_ms.reserve(static_cast<size_t>(repeat));
  for (int64_t i = 0; i < repeat; ++i) {
    before();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    t.samples_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return t;
}

// ---- devices
// A real GPU (not the CPU emulation of the CUDA backend).
bool real_gpu();
// --device cpu | cuda | cuda:N; a CUDA device that is not there is an Error
// naming the remedies (UsageError for a malformed value).
Device parse_device(const std::string& v);
// The same device as PyTorch names it ("cpu", "cuda:N").
std::string torch_device(Device d);
// One line for a report: the CPU model, threads and OpenBLAS build, or the
// GPU's name, compute capability, SMs, memory and backend (the emulation
// says that its times say nothing about a GPU).
std::string device_description(Device d, int64_t threads);

// Waits for the work enqueued on a device (CUDA: its compute stream; CPU: nothing).
void synchronize(Device d);

// Start/stop events on a CUDA device's compute stream, for timing work there.
class StreamTimer {
 public:
  explicit StreamTimer(int device);
  ~StreamTimer();
  StreamTimer(const StreamTimer&) = delete;
  StreamTimer& operator=(const StreamTimer&) = delete;
  void start();
  double stop_ms();  // records the stop event, waits for it, returns the elapsed time

 private:
  int device_;
  void* start_;  // kernels::Event, kept opaque here
  void* stop_;
};

// time_runs on a device. CPU: exactly time_runs. CUDA: `before` runs and the
// device is synchronised, then fn is timed with events on the compute stream
// (the device's time from the first enqueued op to the end of the last, host
// overheads that leave the device idle included).
template <class Before, class Fn>
Timing time_runs_on(Device d, int64_t warmup, int64_t repeat, Before&& before, Fn&& fn) {
  if (d.is_cpu()) return time_runs(warmup, repeat, before, fn);
  for (int64_t i = 0; i < warmup; ++i) {
    before();
    fn();
  }
  synchronize(d);
  StreamTimer timer(d.index);
  Timing t;
  t.samples_ms.reserve(static_cast<size_t>(repeat));
  for (int64_t i = 0; i < repeat; ++i) {
    before();
    synchronize(d);
    timer.start();
    fn();
    t.samples_ms.push_back(timer.stop_ms());
  }
  synchronize(d);  // also raises errors the kernels recorded
  return t;
}

// {"median_ms", "min_ms", "samples_ms"}.
Json timing_json(const Timing& t);
// A competitor's array of samples in milliseconds.
Timing timing_of(const Json& samples_ms);

// One case of a competitor's reply: two timings (their keys given by the
// subcommand) and whether the outputs were finite, or the case's error.
struct ReplyCase {
  Timing first, second;
  bool finite = true;
  std::string error;  // empty when measured
};
// reply["cases"][i] belongs to names[i] (checked: count and names, an Error
// otherwise); each is {"name", "error"} or {"name", first_key: samples,
// second_key: samples, "finite"}.
std::vector<ReplyCase> reply_cases(const Json& reply, const std::vector<std::string>& names, const char* first_key,
                                   const char* second_key);

std::string cpu_model();        // "model name" from /proc/cpuinfo, or "unknown CPU"
std::string openblas_build();   // version/config, core, threading model and its thread count
void set_threads(int64_t n);    // OpenMP pool and OpenBLAS
int64_t default_threads();      // what OpenMP would use ($OMP_NUM_THREADS or the cores)
std::string default_python();   // the competitor's interpreter: $OFA_PYTHON, else /usr/bin/python3

struct ProcessResult {
  bool started = false;  // false: the program could not be run (see error)
  int exit_code = -1;    // exit status, or 128 + signal
  std::string out, err, error;
};
// Runs argv[0] (searched in $PATH when it has no '/') with `input` on its
// stdin and `env` (NAME, value) added to its environment; collects stdout and
// stderr. Never throws for a failing program.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                          const std::vector<std::pair<std::string, std::string>>& env = {});

double geometric_mean(const std::vector<double>& v);  // of the positive finite entries; NaN when none
bool all_finite(const Tensor& t);  // float32 values; false for an undefined tensor

// The answer of a competitor script (benchmarks/NAME.py): ok and its JSON
// reply, or why there is none (script missing, interpreter not runnable, no
// JSON on stdout, or the script's own {"error": ...}).
struct CompetitorReply {
  bool ok = false;
  std::string why;
  std::string script;  // full path
  Json reply;
};
// Runs `python OFA_SOURCE_DIR/benchmarks/<script>` with `request` on stdin.
CompetitorReply run_competitor(const std::string& python, const std::string& script, const Json& request,
                               const std::vector<std::pair<std::string, std::string>>& env = {});
// The environment that gives a competitor's thread pools (OpenMP, OpenBLAS,
// MKL) `threads` threads.
std::vector<std::pair<std::string, std::string>> thread_env(int64_t threads);

// The last non-blank line of s (a failing script's message).
std::string last_line(const std::string& s);

// printf of one finite number into a table cell; "-" for NaN or infinity.
std::string cell(const char* format, double v);

// A view of a stored weight, per dim [start, length]: a leading slice or a
// centre crop (the supernet takes it on every forward). Empty: the whole weight.
using WeightView = std::vector<std::array<int64_t, 2>>;
WeightView centre_crop(int64_t C, int64_t k, int64_t full = 7);  // of a depthwise weight [C, 1, full, full]
WeightView leading(int64_t out, int64_t in);                      // of a 1x1 conv weight [out, in, 1, 1]
Tensor view_of(const Tensor& full, const WeightView& view);       // narrow per dim (autograd sees the view)
Shape view_shape(const Shape& full, const WeightView& view);

}  // namespace ofa::bench
