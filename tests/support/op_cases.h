// The table of op cases that the backend-consistency tests run: every op of
// engine/ops.h on odd sizes, weight slices and crops. Inputs are random
// tensors of the listed shapes; labels, indices and running statistics are
// made inside the lambdas on the first input's device and dtype.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace ofa::test {

struct OpCase {
  std::string name;
  std::vector<Shape> input_shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  double atol = 1e-5, rtol = 1e-4;
  bool differentiable = true;
};

// Non-random inputs (labels, indices, running statistics) are made inside
// the lambdas on the device of the first input.
inline Tensor labels(const Tensor& like, std::vector<int64_t> v) {
  return from_vector<int64_t>(v, {static_cast<int64_t>(v.size())}, like.device());
}

inline std::vector<OpCase> op_cases() {
  const MemoryFormat CL = MemoryFormat::ChannelsLast;
  auto bn = [](const Tensor& x, const Tensor& w, const Tensor& b, bool training, Act act = Act::Identity) {
    const int64_t C = x.size(1);
    Tensor rm = zeros({C + 3}, x.dtype(), x.device()), rv = ones({C + 3}, x.dtype(), x.device());
    return batch_norm_act(x, w.narrow(0, 0, C), b.narrow(0, 0, C), rm.narrow(0, 0, C), rv.narrow(0, 0, C), training,
                          0.1, 1e-5, act);
  };
  std::vector<OpCase> c = {
      {"relu", {{3, 13, 7, 7}}, [](auto& in) { return relu(in[0]); }},
      {"relu6", {{3, 13, 7, 7}}, [](auto& in) { return relu6(mul(in[0], 4.0)); }},
      {"hswish", {{3, 13, 7, 7}}, [](auto& in) { return hswish(mul(in[0], 4.0)); }},
      {"hsigmoid", {{3, 13, 7, 7}}, [](auto& in) { return hsigmoid(mul(in[0], 4.0)); }},
      {"add_broadcast", {{3, 13, 7, 7}, {13, 1, 1}}, [](auto& in) { return add(in[0], in[1]); }},
      {"sub", {{3, 13}, {3, 13}}, [](auto& in) { return sub(in[0], in[1]); }},
      {"mul_se", {{3, 13, 7, 7}, {3, 13, 1, 1}}, [=](auto& in) { return mul(in[0].contiguous(CL), in[1]); }},
      {"sum_dims", {{3, 13, 7, 7}}, [](auto& in) { return sum(in[0], {0, 2, 3}); }},
      {"mean", {{3, 13, 7, 7}}, [](auto& in) { return mean(in[0]); }},
      {"conv2d_stem_3x3_s2", {{3, 3, 13, 11}, {16, 3, 3, 3}},
       [](auto& in) { return conv2d(in[0], in[1], Tensor(), {{2, 2}, {1, 1}, 1}); }},
      {"conv2d_grouped_bias", {{3, 26, 7, 7}, {14, 13, 3, 3}, {14}},
       [](auto& in) { return conv2d(in[0], in[1], in[2], {{1, 1}, {1, 1}, 2}); }},
      {"conv1x1_weight_slice", {{3, 13, 7, 7}, {40, 20, 1, 1}},
       [](auto& in) { return conv2d(in[0], in[1].narrow(0, 0, 24).narrow(1, 0, 13), Tensor(), {}); }},
      {"linear_weight_slice", {{5, 13}, {20, 16}, {20}},
       [](auto& in) { return linear(in[0], in[1].narrow(0, 0, 11).narrow(1, 0, 13), in[2].narrow(0, 0, 11)); }},
      {"matmul_batched", {{3, 5, 7}, {3, 9, 7}}, [](auto& in) { return matmul(in[0], in[1].transpose(1, 2)); }},
      {"batch_norm_train_slice", {{3, 13, 7, 7}, {20}, {20}}, [=](auto& in) { return bn(in[0], in[1], in[2], true); }},
      {"batch_norm_eval_slice", {{3, 13, 7, 7}, {20}, {20}}, [=](auto& in) { return bn(in[0], in[1], in[2], false); }},
      // Fused BN + activation; the weight scaled so that the kinks (0, 6; -3, 3) are crossed.
      {"batch_norm_hswish_train_slice", {{3, 13, 7, 7}, {20}, {20}},
       [=](auto& in) { return bn(in[0], mul(in[1], 3.0), mul(in[2], 2.0), true, Act::HSwish); }},
      {"batch_norm_relu6_eval_slice", {{3, 13, 7, 7}, {20}, {20}},
       [=](auto& in) { return bn(mul(in[0], 4.0), mul(in[1], 3.0), mul(in[2], 3.0), false, Act::Relu6); }},
      {"batch_norm_relu_train_2d", {{9, 13}, {13}, {13}},
       [=](auto& in) { return bn(in[0], in[1], in[2], true, Act::Relu); }},
      {"global_avg_pool", {{3, 13, 7, 7}}, [](auto& in) { return global_avg_pool2d(in[0]); }},
      {"dropout_seeded", {{3, 13, 7, 7}}, [](auto& in) {
         Generator g(5);  // Philox: the same mask on both devices
         return dropout(in[0], 0.3, true, &g);
       }},
      {"log_softmax", {{5, 10}}, [](auto& in) { return log_softmax(in[0], 1); }},
      {"softmax_dim0", {{5, 10}}, [](auto& in) { return softmax(in[0], 0); }},
      {"cross_entropy_ls", {{5, 10}}, [](auto& in) { return cross_entropy(in[0], labels(in[0], {1, 9, 0, 3, 3}), 0.1); }},
      {"cross_entropy_soft", {{5, 10}, {5, 10}}, [](auto& in) { return cross_entropy_soft(in[0], softmax(in[1], 1)); }},
      {"mse_loss", {{5, 10}, {5, 10}}, [](auto& in) { return mse_loss(in[0], in[1]); }},
      {"index_select", {{6, 13}}, [](auto& in) { return index_select(in[0], 0, labels(in[0], {5, 0, 0, 2})); }},
      {"gather", {{3, 5}}, [](auto& in) {
         return gather(in[0], 1, from_vector<int64_t>({4, 0, 1, 1, 3, 3}, {3, 2}, in[0].device()));
       }},
  };
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      c.push_back({"depthwise_k" + std::to_string(k) + "_s" + std::to_string(s), {{3, 13, 9, 7}, {20, 1, 7, 7}},
                   [=](auto& in) {
                     const int64_t off = 3 - k / 2;
                     return depthwise_conv2d(in[0], in[1].narrow(0, 0, 13).narrow(2, off, k).narrow(3, off, k), s);
                   }});
  // Not differentiable: forward only.
  c.push_back({"argsort_desc", {{4, 9}}, [](auto& in) { return argsort(in[0], 1, true); }, 0, 0, false});
  return c;
}

inline OpCase find_op_case(const std::string& name) {
  for (auto& c : op_cases())
    if (c.name == name) return c;
  throw Error("no op case " + name);
}

inline std::vector<std::string> op_case_names() {
  std::vector<std::string> n;
  for (auto& c : op_cases()) n.push_back(c.name);
  return n;
}

}  // namespace ofa::test
