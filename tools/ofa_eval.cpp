// ofa_eval: evaluate, recalibrate, train one step, export and describe OFA
// networks on tensors (see ofa/eval_tensors.h and `ofa_eval --help`).
#include "ofa/eval_tensors.h"

int main(int argc, char** argv) { return ofa::nn::ofa_eval_main(argc, argv); }
