// Module: a tree of named parameters, buffers and child modules, with
// PyTorch's naming and ordering so that checkpoints map key for key.
//
// Names join the path with dots ("blocks.3.conv.depth_conv.conv.weight").
// state_dict() order is PyTorch's: for each module its own parameters, then
// its own buffers (both in registration order), then each child in
// registration order, recursively.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ofa::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict left unmatched (PyTorch's _IncompatibleKeys).
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, not in the dict
  std::vector<std::string> unexpected_keys;  // in the dict, not in the module
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Copies would share tensors and children behind the user's back.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (names: non-empty, no dots, unique within this module)
  // Sets requires_grad on `t` (a floating leaf) and returns the same tensor.
  Tensor register_parameter(const std::string& name, Tensor t);
  // Buffers are state without gradients (running stats, counters; any dtype).
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, std::shared_ptr<Module>(m));
    return m;
  }

  // ---- traversal
  // Recursive, in state_dict order. A tensor registered twice (shared
  // weights) is listed once, under its first name, as in PyTorch, so an
  // optimizer never updates it twice.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  // Direct children, in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::shared_ptr<Module>> children() const;
  // This module ("") and all descendants, pre-order (PyTorch's named_modules).
  std::vector<std::pair<std::string, Module*>> named_modules();

  // ---- checkpoints
  // Parameters and buffers as detached views sharing the live storage (no
  // copies): serialise them, or clone them, before the next optimizer step.
  NamedTensors state_dict() const;
  // Copies values in place (converting dtype/device as copy_ does), so
  // existing handles to the parameters stay valid. Nothing is copied unless
  // every check passes: shape mismatches always throw; with `strict`, so do
  // missing and unexpected keys. The single error lists every problem.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);

  // ---- device
  // Moves every parameter and buffer to `d` in place: the tensors keep their
  // identity (handles held by the caller, shared weights registered twice,
  // an optimizer made later) and get a contiguous copy on `d`; gradients are
  // dropped. Views taken earlier (state_dict entries, slices) keep pointing
  // at the old memory: take them after the move.
  void to(Device d);
  // Converts every floating parameter and buffer to `t` in place, the same
  // way (integer buffers such as num_batches_tracked stay as they are).
  void to(DType t);
  // Where the weights are and their dtype: those of the first parameter
  // (every parameter shares them after to()); cpu / F32 without parameters.
  Device device() const;
  DType dtype() const;

  // ---- modes and gradients
  void train(bool on = true);  // this module and all descendants
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // zeroes every existing .grad in place (keeps the buffers)

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace ofa::nn
