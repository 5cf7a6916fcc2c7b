// ofa_bench: benchmarks of the engine against reference implementations,
// one subcommand per area. Exit status: 0 done, 1 failed (an error while
// running, or a --check that found a problem), 2 bad command line.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "benchmarks/bench_util.h"
#include "benchmarks/data_bench.h"
#include "benchmarks/kernels_bench.h"
#include "benchmarks/ops_bench.h"
#include "benchmarks/train_bench.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);
  void (*usage)(FILE* out);
};

// Each area adds a row.
const Subcommand kSubcommands[] = {
    {"ops", "CPU op benchmarks (conv, depthwise, BN, h-swish, SE, linear, loss), PyTorch in the same run",
     ofa::bench::ops_main, ofa::bench::ops_usage},
    {"data", "input pipeline: JPEG decode + training transforms on loader workers, PIL/torchvision in the same run",
     ofa::bench::data_main, ofa::bench::data_usage},
    {"train", "training steps/s of one subnet (forward, backward, SGD), PyTorch training the same net in the same run",
     ofa::bench::train_main, ofa::bench::train_usage},
    {"kernels", "depthwise k3/5/7, sliced 1x1 GEMMs, BN+act at the OFA stage shapes, GPU or CPU: GB/s vs copy, "
                "PyTorch/cuDNN in the same run",
     ofa::bench::kernels_main, ofa::bench::kernels_usage},
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_bench SUBCOMMAND [OPTIONS]\n"
               "       ofa_bench SUBCOMMAND --help\n"
               "\n"
               "Benchmarks ofa-engine, with a competitor timed in the same run.\n"
               "\n"
               "subcommands:\n");
  for (const Subcommand& s : kSubcommands) std::fprintf(out, "  %-7s %s\n", s.name, s.summary);
  std::fprintf(out, "\nexit status: 0 done, 1 failed, 2 bad command line\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  for (const Subcommand& s : kSubcommands) {
    if (cmd != s.name) continue;
    try {
      return s.main(argc - 1, argv + 1);
    } catch (const ofa::bench::UsageError& e) {
      std::fprintf(stderr, "ofa_bench %s: error: %s\n", s.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ofa_bench %s: error: %s\n", s.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "ofa_bench: error: unknown subcommand '%s' (known:", cmd.c_str());
  for (const Subcommand& s : kSubcommands) std::fprintf(stderr, " %s", s.name);
  std::fprintf(stderr, "; see ofa_bench --help)\n");
  return 2;
}
