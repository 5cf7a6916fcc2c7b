#include "nn/optim.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "kernels/cpu/optim.h"

namespace ofa::nn {

std::vector<ParamGroup> make_param_groups(const NamedTensors& params, const std::vector<std::string>& no_decay_keys,
                                          const ParamGroup& hyper) {
  ParamGroup decay = hyper;
  decay.params.clear();
  if (no_decay_keys.empty()) {
    decay.params = params;
    return {decay};
  }
  ParamGroup no_decay = decay;
  no_decay.weight_decay = 0;
  for (const auto& kv : params) {
    bool hit = std::any_of(no_decay_keys.begin(), no_decay_keys.end(),
                           [&](const std::string& k) { return kv.first.find(k) != std::string::npos; });
    (hit ? no_decay : decay).params.push_back(kv);
  }
  return {decay, no_decay};
}

// ---------------------------------------------------------------- CUDA multi-tensor steps

namespace {
// CUDA parameters collected for one fused optimizer launch per (device,
// dtype): the tensors are held until the launch so the pointers stay valid.
class CudaBatch {
 public:
  void add(const Tensor& p, const Tensor& g, const Tensor& b0, const Tensor& b1, bool first) {
    OFA_CHECK(p.is_dense() && g.strides() == p.strides(), "optimizer: CUDA parameter of shape ",
              shape_str(p.shape()), " is not dense or its gradient has another layout");
    Group& grp = groups_[{p.device().index, static_cast<int>(p.dtype())}];
    grp.ts.push_back({p.raw_data(), g.raw_data(), b0.defined() ? b0.raw_data() : nullptr,
                      b1.defined() ? b1.raw_data() : nullptr, p.numel(), first});
    grp.keep.insert(grp.keep.end(), {p, g, b0, b1});
  }
  template <class F>
  void run(F&& launch) {
    for (auto& [key, grp] : groups_) {
      CudaScratch scratch(key.first);
      launch(cuda_backend(), static_cast<DType>(key.second), grp.ts, scratch, cuda_stream(key.first));
    }
    groups_.clear();
  }

 private:
  struct Group {
    std::vector<kernels::OptimTensor> ts;
    std::vector<Tensor> keep;
  };
  std::map<std::pair<int, int>, Group> groups_;
};
}  // namespace

// ---------------------------------------------------------------- Optimizer

namespace {
void check_hyper(const char* opt, size_t gi, const ParamGroup& g) {
  auto where = [&] { return str_cat(opt, ": param group ", gi, ": "); };
  OFA_CHECK(std::isfinite(g.lr) && g.lr >= 0, where(), "lr must be set to a finite value >= 0, got ", g.lr);
  OFA_CHECK(g.weight_decay >= 0, where(), "weight_decay must be >= 0, got ", g.weight_decay);
  OFA_CHECK(g.momentum >= 0, where(), "momentum must be >= 0, got ", g.momentum);
  OFA_CHECK(!g.nesterov || (g.momentum > 0 && g.dampening == 0), where(),
            "nesterov needs momentum > 0 and dampening 0 (got momentum ", g.momentum, ", dampening ", g.dampening, ")");
  OFA_CHECK(g.beta1 >= 0 && g.beta1 < 1 && g.beta2 >= 0 && g.beta2 < 1, where(), "betas must lie in [0, 1), got (",
            g.beta1, ", ", g.beta2, ")");
  OFA_CHECK(g.eps >= 0, where(), "eps must be >= 0, got ", g.eps);
}

// Two dense tensors of one shape map element i to the same memory offset.
bool same_layout(const Tensor& a, const Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  return b.is_dense();
}
}  // namespace

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> kinds, bool counts_steps)
    : name_(name), groups_(std::move(groups)), kinds_(std::move(kinds)), counts_steps_(counts_steps) {
  OFA_CHECK(!groups_.empty(), name_, ": no parameter groups");
  std::set<std::string> names;
  std::set<const TensorImpl*> tensors;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    check_hyper(name_, gi, groups_[gi]);
    for (const auto& [n, p] : groups_[gi].params) {
      OFA_CHECK(p.defined(), name_, ": parameter '", n, "' is undefined");
      OFA_CHECK(names.insert(n).second, name_, ": parameter name '", n, "' appears twice (names key the state)");
      OFA_CHECK(tensors.insert(p.impl()).second, name_, ": parameter '", n,
                "' is the same tensor as an earlier parameter; list each tensor once");
      OFA_CHECK(is_floating(p.dtype()), name_, ": parameter '", n, "' has dtype ", dtype_name(p.dtype()));
      OFA_CHECK(p.is_leaf(), name_, ": parameter '", n, "' is not a leaf (it was computed by an op)");
      // The kernels walk the parameter's memory linearly.
      OFA_CHECK(p.is_dense(), name_, ": parameter '", n, "' with shape ", shape_str(p.shape()), " and strides ",
                shape_str(p.strides()), " is a view with holes; optimize the whole tensor");
    }
  }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& kv : g.params) kv.second.zero_grad();
}

void Optimizer::set_lr(double lr) {
  OFA_CHECK(std::isfinite(lr) && lr >= 0, name_, ".set_lr: lr must be finite and >= 0, got ", lr);
  for (auto& g : groups_) g.lr = lr;
}

Tensor Optimizer::grad_like_param(const std::string& name, const Tensor& p) const {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  OFA_CHECK(g.shape() == p.shape(), name_, ": gradient of '", name, "' has shape ", shape_str(g.shape()),
            ", the parameter ", shape_str(p.shape()));
  OFA_CHECK(g.dtype() == p.dtype(), name_, ": gradient of '", name, "' is ", dtype_name(g.dtype()), ", the parameter ",
            dtype_name(p.dtype()));
  OFA_CHECK(g.device() == p.device(), name_, ": gradient of '", name, "' is on ", g.device().str(), ", the parameter on ",
            p.device().str());
  if (same_layout(p, g)) return g;
  Tensor c = empty_like(p);
  c.copy_(g);
  return c;
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (const auto& g : groups_)
    for (const auto& kv : g.params) {
      auto it = state_.find(kv.first);
      if (it == state_.end() || it->second.buffers.empty()) continue;
      for (size_t k = 0; k < kinds_.size(); ++k)
        out.emplace_back(kinds_[k] + "." + kv.first, it->second.buffers[k].detach());
      if (counts_steps_)
        out.emplace_back("step." + kv.first, scalar_tensor(static_cast<double>(it->second.step), DType::I64));
    }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& in) {
  std::map<std::string, const Tensor*> params;
  for (const auto& g : groups_)
    for (const auto& kv : g.params) params.emplace(kv.first, &kv.second);
  std::vector<std::string> kinds = kinds_;
  if (counts_steps_) kinds.push_back("step");

  std::vector<std::string> problems;
  // parameter name -> (kind index -> tensor)
  std::map<std::string, std::map<size_t, const Tensor*>> found;
  std::set<std::string> seen;
  for (const auto& [key, t] : in) {
    if (!seen.insert(key).second) {
      problems.push_back(str_cat("duplicate key '", key, "'"));
      continue;
    }
    const size_t dot = key.find('.');
    const std::string kind = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string pname = dot == std::string::npos ? "" : key.substr(dot + 1);
    const auto kit = std::find(kinds.begin(), kinds.end(), kind);
    if (kit == kinds.end()) {
      std::string list;
      for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
      problems.push_back(str_cat("unexpected key '", key, "': ", name_, " keeps <kind>.<parameter> with kind one of: ", list));
      continue;
    }
    auto pit = params.find(pname);
    if (pit == params.end()) {
      problems.push_back(str_cat("unexpected key '", key, "': no parameter '", pname, "' in this optimizer"));
      continue;
    }
    found[pname][static_cast<size_t>(kit - kinds.begin())] = &t;
    if (!t.defined()) {
      problems.push_back(str_cat("'", key, "' is an undefined tensor"));
      continue;
    }
    const bool is_step = counts_steps_ && kind == "step";
    if (is_step) {
      if (t.numel() != 1 || t.item() < 1 || t.item() != std::floor(t.item()))
        problems.push_back(str_cat("'", key, "' must hold one integer step count >= 1, got shape ", shape_str(t.shape()),
                                   t.numel() == 1 ? str_cat(" value ", t.item()) : std::string()));
    } else if (t.shape() != pit->second->shape()) {
      problems.push_back(str_cat("size mismatch for '", key, "': the state has shape ", shape_str(t.shape()),
                                 ", the parameter ", shape_str(pit->second->shape())));
    } else if (!is_floating(t.dtype())) {
      problems.push_back(str_cat("'", key, "' has dtype ", dtype_name(t.dtype()), "; expected a floating tensor"));
    }
  }
  // A parameter has all of its state or none of it.
  for (const auto& [pname, by_kind] : found)
    for (size_t k = 0; k < kinds.size(); ++k)
      if (!by_kind.count(k))
        problems.push_back(str_cat("missing key '", kinds[k], ".", pname, "' (the state has other entries for '", pname, "')"));

  if (!problems.empty()) {
    std::string msg = str_cat(name_, ".load_state_dict: ", problems.size(), " problem(s), nothing was loaded:");
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }

  NoGradGuard ng;
  state_.clear();
  for (const auto& [pname, by_kind] : found) {
    const Tensor& p = *params.at(pname);
    ParamState& st = state_[pname];
    for (size_t k = 0; k < kinds_.size(); ++k) {
      Tensor b = empty_like(p);  // dense params: the buffer shares their layout
      b.copy_(*by_kind.at(k));
      st.buffers.push_back(b);
    }
    if (counts_steps_) st.step = static_cast<int64_t>(by_kind.at(kinds_.size())->item());
  }
}

// ---------------------------------------------------------------- SGD

SGD::SGD(std::vector<ParamGroup> groups) : Optimizer("SGD", std::move(groups), {"momentum_buffer"}, false) {}

void SGD::step() {
  NoGradGuard ng;
  for (const auto& grp : groups_) {
    // CUDA parameters of the group, stepped together by one multi-tensor
    // launch per device and dtype (the tensors keep g and buffers alive).
    CudaBatch batch;
    const kernels::SgdCoeffs<double> cd{-grp.lr, grp.momentum, 1 - grp.dampening, grp.weight_decay, grp.nesterov};
    for (const auto& [name, p] : grp.params) {
      Tensor g = grad_like_param(name, p);
      if (!g.defined()) continue;
      ParamState& st = state(name);
      const bool use_momentum = grp.momentum != 0;
      const bool first = use_momentum && st.buffers.empty();
      if (first) st.buffers = {empty_like(p)};
      if (p.device().is_cuda()) {
        batch.add(p, g, use_momentum ? st.buffers[0] : Tensor(), Tensor(), first);
        continue;
      }
      OFA_DISPATCH_FLOATING(p.dtype(), "SGD.step", [&] {
        kernels::SgdCoeffs<scalar_t> c{static_cast<scalar_t>(-grp.lr), static_cast<scalar_t>(grp.momentum),
                                       static_cast<scalar_t>(1 - grp.dampening),
                                       static_cast<scalar_t>(grp.weight_decay), grp.nesterov};
        scalar_t* buf = use_momentum ? st.buffers[0].data<scalar_t>() : nullptr;
        kernels::cpu::sgd_step(c, first, p.data<scalar_t>(), g.data<scalar_t>(), buf, p.numel());
      });
    }
    batch.run([&](kernels::CudaBackend& be, DType t, const std::vector<kernels::OptimTensor>& ts,
                  kernels::Scratch& scratch, kernels::Stream s) { be.sgd_step(t, cd, ts, scratch, s); });
  }
}

// ---------------------------------------------------------------- Adam

Adam::Adam(std::vector<ParamGroup> groups) : Optimizer("Adam", std::move(groups), {"exp_avg", "exp_avg_sq"}, true) {}

void Adam::step() {
  NoGradGuard ng;
  for (const auto& grp : groups_) {
    // CUDA parameters stepped together share the step count (and so the
    // coefficients); a parameter with another count starts a new batch.
    CudaBatch batch;
    kernels::AdamCoeffs<double> batch_c{};
    int64_t batch_step = -1;
    auto flush = [&] {
      batch.run([&](kernels::CudaBackend& be, DType t, const std::vector<kernels::OptimTensor>& ts,
                    kernels::Scratch& scratch, kernels::Stream s) { be.adam_step(t, batch_c, ts, scratch, s); });
    };
    for (const auto& [name, p] : grp.params) {
      Tensor g = grad_like_param(name, p);
      if (!g.defined()) continue;
      ParamState& st = state(name);
      if (st.buffers.empty()) {
        st.buffers = {zeros_like(p), zeros_like(p)};
        st.step = 0;
      }
      st.step += 1;
      // Host scalars in double, as torch computes them from Python floats.
      const double step = static_cast<double>(st.step);
      const double bc1 = 1 - std::pow(grp.beta1, step);
      const double bc2 = 1 - std::pow(grp.beta2, step);
      const double step_size = grp.lr / bc1;
      if (p.device().is_cuda()) {
        if (st.step != batch_step) {
          flush();
          batch_step = st.step;
          batch_c = {grp.beta1, 1 - grp.beta1,    grp.beta2, 1 - grp.beta2,
                     grp.weight_decay, std::sqrt(bc2), grp.eps, -step_size};
        }
        batch.add(p, g, st.buffers[0], st.buffers[1], false);
        continue;
      }
      OFA_DISPATCH_FLOATING(p.dtype(), "Adam.step", [&] {
        using T = scalar_t;
        kernels::AdamCoeffs<T> c{static_cast<T>(grp.beta1),        static_cast<T>(1 - grp.beta1),
                                 static_cast<T>(grp.beta2),        static_cast<T>(1 - grp.beta2),
                                 static_cast<T>(grp.weight_decay), static_cast<T>(std::sqrt(bc2)),
                                 static_cast<T>(grp.eps),          static_cast<T>(-step_size)};
        kernels::cpu::adam_step(c, p.data<T>(), g.data<T>(), st.buffers[0].data<T>(), st.buffers[1].data<T>(),
                                p.numel());
      });
    }
    flush();
  }
}

}  // namespace ofa::nn
