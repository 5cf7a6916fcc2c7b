// `ofa_bench train`: training images per second of one OFA-MobileNetV3
// subnet (forward, backward, SGD step) and peak memory, with PyTorch training
// the same network in the same run (benchmarks/torch_train.py).
#pragma once
#include <cstdio>

namespace ofa::bench {

int train_main(int argc, char** argv);  // argv[0] is "train"
void train_usage(FILE* out);

}  // namespace ofa::bench
