// Shared by the ofa_bench subcommands: timing statistics, machine
// description (CPU model, OpenBLAS build), running a competitor script.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/common.h"

namespace ofa::bench {

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

}  // namespace ofa::bench
