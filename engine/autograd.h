// Define-by-run autograd: every op that sees an input requiring grad records
// a Node; backward() walks the recorded graph from a scalar in dependency
// order and accumulates into the leaves' .grad().
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ofa {

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  virtual ~Node() = default;
  // grads[i] is the gradient of this node's output i (undefined when none
  // reached it); returns one gradient per next edge (undefined for none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  // Drops saved tensors once backward has used them (unless retain_graph).
  virtual void release() {}
  std::vector<Edge> next_edges;
  uint32_t num_outputs = 1;
};

// Accumulates into a leaf's .grad(): the end of every path.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool e);
};

// No graph is recorded inside this scope (evaluation, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
Edge gradient_edge(const Tensor& t);
// Connects `node` to the inputs and makes it the grad_fn of the outputs.
void set_history(const std::vector<Tensor*>& outputs, const std::shared_ptr<Node>& node,
                 std::initializer_list<const Tensor*> inputs);
inline void set_history(Tensor& out, const std::shared_ptr<Node>& node,
                        std::initializer_list<const Tensor*> inputs) {
  set_history(std::vector<Tensor*>{&out}, node, inputs);
}

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

}  // namespace ofa
