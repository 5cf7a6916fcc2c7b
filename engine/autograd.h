// Define-by-run autograd: every op that sees an input requiring grad records
// a Node; backward() walks the recorded graph from a scalar in dependency
// order and accumulates into the leaves' .grad().
#pragma once
#include <functional>
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
  Tensor leaf() const { return Tensor(leaf_); }

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

// Called by run_backward once per leaf it reaches, right after the leaf's
// AccumulateGrad ran. The engine sums every contribution to a node before
// running it, so leaf.grad() is then final for this pass (undefined only when
// no gradient reached the leaf and it had none before). Never called for
// non-leaf tensors. Data-parallel training starts a bucket's allreduce from
// it while backward goes on (GradientSync).
using LeafGradHook = std::function<void(const Tensor& leaf)>;

// Installs `hook` for the run_backward calls of this thread within its scope;
// the previous hook (or none) comes back after it. With none installed
// backward costs one pointer test per node.
class LeafGradHookGuard {
 public:
  explicit LeafGradHookGuard(LeafGradHook hook);
  ~LeafGradHookGuard();
  LeafGradHookGuard(const LeafGradHookGuard&) = delete;
  LeafGradHookGuard& operator=(const LeafGradHookGuard&) = delete;

 private:
  LeafGradHook hook_;
  const LeafGradHook* prev_;
};

// The leaves whose AccumulateGrad a backward pass from `root` would run (the
// leaves of its graph that require grad), in no particular order; empty when
// `root` does not require grad.
std::vector<Tensor> reachable_leaves(const Tensor& root);

}  // namespace ofa
