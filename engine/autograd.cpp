#include "engine/autograd.h"

#include <unordered_map>

#include "engine/ops.h"

namespace ofa {

namespace {
thread_local bool g_grad_enabled = true;
thread_local const LeafGradHook* g_leaf_hook = nullptr;
}  // namespace

bool GradMode::enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool e) { g_grad_enabled = e; }

LeafGradHookGuard::LeafGradHookGuard(LeafGradHook hook) : hook_(std::move(hook)), prev_(g_leaf_hook) {
  OFA_CHECK(hook_ != nullptr, "LeafGradHookGuard: an empty hook");
  g_leaf_hook = &hook_;
}

LeafGradHookGuard::~LeafGradHookGuard() { g_leaf_hook = prev_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl->grad_accumulator = acc;
  }
  return {acc, 0};
}

void set_history(const std::vector<Tensor*>& outputs, const std::shared_ptr<Node>& node,
                 std::initializer_list<const Tensor*> inputs) {
  node->next_edges.clear();
  for (const Tensor* t : inputs) node->next_edges.push_back(t ? gradient_edge(*t) : Edge{});
  node->num_outputs = static_cast<uint32_t>(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* o = outputs[i]->impl();
    o->requires_grad = true;
    o->grad_fn = node;
    o->output_nr = static_cast<uint32_t>(i);
  }
}

namespace {
// True when nothing but `g` itself refers to its memory and it is laid out
// exactly like the parameter would lay out its own buffer: then it can become
// the .grad() without a copy.
bool can_adopt(const Tensor& g, const Tensor& leaf) {
  if (g.impl_ptr().use_count() != 1 || g.impl()->storage.use_count() != 1) return false;
  if (g.dtype() != leaf.dtype() || g.device() != leaf.device() || g.offset() != 0) return false;
  Tensor like = leaf.is_dense() ? leaf : leaf.contiguous();
  if (!g.is_dense() || g.strides() != like.strides()) return false;
  return g.impl()->storage->nbytes() == static_cast<size_t>(g.numel()) * dtype_size(g.dtype());
}
}  // namespace

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = std::move(grads.at(0));
  if (!g.defined()) return {};
  OFA_CHECK(g.shape() == leaf_->shape, "AccumulateGrad: gradient shape ", shape_str(g.shape()),
            " does not match the parameter's ", shape_str(leaf_->shape));
  Tensor leaf(leaf_);
  if (!leaf_->grad) {
    if (can_adopt(g, leaf)) {
      leaf_->grad = g.impl_ptr();
      return {};
    }
    // A fresh buffer laid out like the parameter, so later += are linear.
    Tensor buf = empty_like(leaf);
    buf.copy_(g);
    leaf_->grad = buf.impl_ptr();
  } else {
    Tensor(leaf_->grad).add_(g);
  }
  return {};
}

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  OFA_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of its graph has requires_grad set)");
  Tensor seed = grad_root;
  if (!seed.defined()) {
    OFA_CHECK(root.numel() == 1, "backward: without an explicit gradient the output must be a scalar, got shape ",
              shape_str(root.shape()));
    seed = ones(root.shape(), root.dtype(), root.device());
  }
  OFA_CHECK(seed.shape() == root.shape(), "backward: gradient shape ", shape_str(seed.shape()),
            " does not match output shape ", shape_str(root.shape()));
  NoGradGuard no_grad;
  Edge root_edge = gradient_edge(root);

  // Count, for every node reachable from the root, how many edges point at it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_edge.fn.get()};
  deps[root_edge.fn.get()] = 0;
  std::unordered_map<Node*, bool> seen{{root_edge.fn.get(), true}};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      deps[e.fn.get()] += 1;
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
    }
  }

  // Gradients waiting for each node, one slot per node output.
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep_alive;
  auto add_grad = [&](const Edge& e, Tensor g) {
    auto& slots = pending[e.fn.get()];
    if (slots.empty()) slots.resize(e.fn->num_outputs);
    Tensor& s = slots[e.input_nr];
    s = s.defined() ? add(s, g) : g;
    keep_alive[e.fn.get()] = e.fn;
  };
  add_grad(root_edge, seed);

  std::vector<Node*> ready{root_edge.fn.get()};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    std::vector<Tensor> in = std::move(pending[n]);
    pending.erase(n);
    std::vector<Tensor> out = n->apply(std::move(in));
    // An AccumulateGrad runs once per pass, after all its inputs arrived: its leaf's grad is final.
    if (g_leaf_hook != nullptr)
      if (const auto* acc = dynamic_cast<const AccumulateGrad*>(n)) (*g_leaf_hook)(acc->leaf());
    OFA_CHECK(out.size() == n->next_edges.size() || out.empty(), "autograd: node ", n->name(), " returned ",
              out.size(), " gradients for ", n->next_edges.size(), " inputs");
    for (size_t i = 0; i < n->next_edges.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.valid()) continue;
      if (i < out.size() && out[i].defined()) add_grad(e, out[i]);
      else if (pending.find(e.fn.get()) == pending.end()) pending[e.fn.get()].resize(e.fn->num_outputs);
      if (--deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
    if (!retain_graph) n->release();
    keep_alive.erase(n);
  }
}

std::vector<Tensor> reachable_leaves(const Tensor& root) {
  std::vector<Tensor> leaves;
  if (!root.defined() || !root.requires_grad()) return leaves;
  const Edge root_edge = gradient_edge(root);
  std::vector<Node*> stack{root_edge.fn.get()};
  std::unordered_map<Node*, bool> seen{{root_edge.fn.get(), true}};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (const auto* acc = dynamic_cast<const AccumulateGrad*>(n)) leaves.push_back(acc->leaf());
    for (const Edge& e : n->next_edges) {
      if (!e.valid() || seen[e.fn.get()]) continue;
      seen[e.fn.get()] = true;
      stack.push_back(e.fn.get());
    }
  }
  return leaves;
}

}  // namespace ofa
