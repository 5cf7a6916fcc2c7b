// `ofa_bench data`: the training input pipeline (JPEG decode + the reference's
// training transforms, batched on worker threads), with PIL + torchvision's
// DataLoader (benchmarks/torch_data.py) timed on the same folder in the same run.
#pragma once
#include <cstdio>

namespace ofa::bench {

// Entry point of the subcommand; argv[0] is "data". Returns the exit status.
int data_main(int argc, char** argv);
void data_usage(FILE* out);

}  // namespace ofa::bench
