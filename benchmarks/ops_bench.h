// `ofa_bench ops`: CPU op benchmarks of the engine, with PyTorch timed on the
// same cases in the same run (benchmarks/torch_ops.py) as the competitor.
#pragma once
#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/common.h"

namespace ofa::bench {

// One benchmark case. The table of cases (op_cases()) is the single source of
// truth: the Python competitor receives it as JSON and builds the same ops.
struct OpCase {
  std::string name;
  std::string kind;  // conv2d, depthwise_conv2d, batch_norm, hswish, se, linear, cross_entropy
  std::string what;  // one line for humans
  Shape input;       // activation [N, C, H, W] (channels-last in memory), features [N, in] or logits [N, K]
  Shape weight_full;  // the stored weight; empty when the op has none
  // The weight the op reads: per dim of weight_full, [start, length] (a
  // leading slice or a centre crop, taken as a view on every forward). Empty:
  // the whole weight.
  WeightView weight_view;
  int64_t stride = 1;
  int64_t padding = 0;
  bool bias = false;
  bool input_grad = true;  // false for the stem (images need no gradient)
  double label_smoothing = 0.0;

  Shape weight_shape() const;  // after the view
  double macs() const;         // multiply-accumulates of the forward; 0 for ops that are not MAC bound
  // FLOPs of one forward and of forward+backward (2 per MAC; backward = input
  // gradient when input_grad, plus the weight gradient).
  double flops_fwd() const { return 2.0 * macs(); }
  double flops_fwd_bwd() const { return 2.0 * macs() * (input_grad ? 3.0 : 2.0); }
  Json to_json() const;
};

const std::vector<OpCase>& op_cases();

// Entry point of the subcommand; argv[0] is "ops". Returns the exit status.
int ops_main(int argc, char** argv);
void ops_usage(FILE* out);

}  // namespace ofa::bench
