// `ofa_bench kernels`: the supernet's bandwidth-bound kernels (depthwise conv
// k 3/5/7 forward and backward, sliced 1x1 convs as GEMMs, BN + activation) at
// the shapes of the OFA-MobileNetV3 stages, on the GPU or the CPU, with
// GB/s against the device's measured copy bandwidth and PyTorch (cuDNN on a
// GPU, benchmarks/torch_kernels.py) timed on the same cases in the same run.
#pragma once
#include <cstdio>

namespace ofa::bench {

// Entry point of the subcommand; argv[0] is "kernels". Returns the exit status.
int kernels_main(int argc, char** argv);
void kernels_usage(FILE* out);

}  // namespace ofa::bench
