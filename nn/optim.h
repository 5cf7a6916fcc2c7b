// Optimizers that reproduce torch.optim.SGD and torch.optim.Adam (1.13)
// number for number, with parameter groups and name-keyed state.
//
// State dict: a list of named tensors keyed by parameter name:
//   SGD:  "momentum_buffer.<param>"
//   Adam: "exp_avg.<param>", "exp_avg_sq.<param>", "step.<param>" (int64, 0-D)
// A parameter that never had a gradient has no state, as in PyTorch.
// Hyperparameters (lr, ...) are not part of it: the schedule sets them.
#pragma once
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "nn/module.h"

namespace ofa::nn {

struct ParamGroup {
  NamedTensors params;  // names must be unique over all groups of one optimizer
  double lr = std::numeric_limits<double>::quiet_NaN();  // must be set
  double weight_decay = 0;
  // SGD
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  // Adam
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// The OFA reference's groups: group 0 holds the parameters whose name
// contains none of `no_decay_keys` (e.g. "bn", "bias") with
// hyper.weight_decay, group 1 the others with weight decay 0; both take the
// remaining hyperparameters from `hyper` (its params are ignored). No keys:
// a single group with hyper.weight_decay, as the reference.
std::vector<ParamGroup> make_param_groups(const NamedTensors& params, const std::vector<std::string>& no_decay_keys,
                                          const ParamGroup& hyper);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a .grad(), in place, outside autograd.
  virtual void step() = 0;
  void zero_grad();  // zeroes existing .grad() in place (PyTorch 1.13's default)
  void set_lr(double lr);  // every group
  // Change hyperparameters here; the parameter lists are fixed at construction.
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // Detached views of the live state (no copies): serialise or clone them
  // before the next step. Ordered by group, then parameter.
  NamedTensors state_dict() const;
  // Replaces the whole state. Checks every key first (known kind, known
  // parameter, shape equal to the parameter's, no partial state for a
  // parameter) and throws one error listing every problem, loading nothing.
  void load_state_dict(const NamedTensors& state);

 protected:
  // `kinds`: the state tensors kept per parameter, in state-dict order.
  Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> kinds, bool counts_steps);

  struct ParamState {
    std::vector<Tensor> buffers;  // one per kind, laid out like the parameter; empty: no state yet
    int64_t step = 0;             // updates applied (only when counts_steps)
  };
  // The gradient of `p` laid out like `p` (copied only when it is not), or an
  // undefined tensor when `p` has none; checks shape, dtype and device.
  Tensor grad_like_param(const std::string& name, const Tensor& p) const;
  ParamState& state(const std::string& name) { return state_[name]; }

  const char* name_;
  std::vector<ParamGroup> groups_;

 private:
  std::vector<std::string> kinds_;
  bool counts_steps_;
  std::unordered_map<std::string, ParamState> state_;
};

// torch.optim.SGD: uses lr, momentum, dampening, nesterov, weight_decay.
class SGD final : public Optimizer {
 public:
  explicit SGD(std::vector<ParamGroup> groups);
  void step() override;
};

// torch.optim.Adam (amsgrad off): uses lr, beta1, beta2, eps, weight_decay.
class Adam final : public Optimizer {
 public:
  explicit Adam(std::vector<ParamGroup> groups);
  void step() override;
};

}  // namespace ofa::nn
