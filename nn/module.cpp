#include "nn/module.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "engine/autograd.h"

namespace ofa::nn {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

void Module::check_new_name(const std::string& name, const char* what) const {
  OFA_CHECK(!name.empty(), what, ": the name is empty");
  OFA_CHECK(name.find('.') == std::string::npos, what, ": name '", name,
            "' contains a dot (dots join the names of nested modules; register a child module instead)");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& kv) { return kv.first == name; });
  };
  OFA_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), what, ": '", name,
            "' is already registered in this module (as a parameter, buffer or child)");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "register_parameter");
  OFA_CHECK(t.defined(), "register_parameter: '", name, "' is an undefined tensor (leave absent parameters unregistered)");
  OFA_CHECK(is_floating(t.dtype()), "register_parameter: '", name, "' has dtype ", dtype_name(t.dtype()),
            "; parameters must be float32 or float64");
  OFA_CHECK(t.is_leaf(), "register_parameter: '", name,
            "' was computed by an op (it has a grad_fn); register t.detach() or a fresh tensor");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "register_buffer");
  OFA_CHECK(t.defined(), "register_buffer: '", name, "' is an undefined tensor");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name, "register_module");
  OFA_CHECK(m != nullptr, "register_module: '", name, "' is a null module");
  OFA_CHECK(m.get() != this, "register_module: '", name, "' is the module itself");
  children_.emplace_back(name, std::move(m));
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& kv : children_) out.push_back(kv.second);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::set<const Module*> seen;
  // Explicit pre-order walk; a module shared by two parents is listed once.
  std::vector<std::pair<std::string, Module*>> todo{{"", this}};
  while (!todo.empty()) {
    auto [prefix, m] = todo.back();
    todo.pop_back();
    if (!seen.insert(m).second) continue;
    out.emplace_back(prefix, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      todo.emplace_back(join(prefix, it->first), it->second.get());
  }
  return out;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (const auto& [n, t] : params_) out.emplace_back(join(prefix, n), t);
  if (buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, m] : children_) m->collect(join(prefix, n), params, buffers, out);
}

namespace {
NamedTensors unique_by_tensor(NamedTensors all) {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  for (auto& kv : all)
    if (seen.insert(kv.second.impl()).second) out.push_back(std::move(kv));
  return out;
}
}  // namespace

NamedTensors Module::named_parameters() const {
  NamedTensors all;
  collect("", true, false, all);
  return unique_by_tensor(std::move(all));
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(kv.second);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors all;
  collect("", false, true, all);
  return unique_by_tensor(std::move(all));
}

NamedTensors Module::state_dict() const {
  NamedTensors all;
  collect("", true, true, all);
  for (auto& kv : all) kv.second = kv.second.detach();
  return all;
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors mine;
  collect("", true, true, mine);
  std::unordered_map<std::string, const Tensor*> given;
  std::vector<std::string> problems;
  for (const auto& [k, t] : state) {
    if (!given.emplace(k, &t).second) problems.push_back(str_cat("duplicate key '", k, "' in the state dict"));
  }
  LoadResult res;
  std::set<std::string> known;
  for (const auto& [k, t] : mine) {
    known.insert(k);
    auto it = given.find(k);
    if (it == given.end()) {
      res.missing_keys.push_back(k);
    } else if (!it->second->defined()) {
      problems.push_back(str_cat("'", k, "' is an undefined tensor in the state dict"));
    } else if (it->second->shape() != t.shape()) {
      problems.push_back(str_cat("size mismatch for '", k, "': the state dict has shape ", shape_str(it->second->shape()),
                                 ", the module has ", shape_str(t.shape())));
    }
  }
  for (const auto& [k, t] : state)
    if (!known.count(k)) res.unexpected_keys.push_back(k);
  if (strict) {
    for (const auto& k : res.missing_keys) problems.push_back(str_cat("missing key '", k, "'"));
    for (const auto& k : res.unexpected_keys) problems.push_back(str_cat("unexpected key '", k, "'"));
  }
  if (!problems.empty()) {
    std::string msg = str_cat("load_state_dict: ", problems.size(), " problem(s), nothing was loaded:");
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  NoGradGuard ng;  // parameters require grad; this copy is not part of any graph
  for (auto& [k, t] : mine) {
    auto it = given.find(k);
    if (it != given.end()) t.copy_(*it->second);
  }
  return res;
}

void Module::train(bool on) {
  for (auto& kv : named_modules()) kv.second->training_ = on;
}

Device Module::device() const {
  const NamedTensors p = named_parameters();
  return p.empty() ? Device::cpu() : p.front().second.device();
}

DType Module::dtype() const {
  const NamedTensors p = named_parameters();
  return p.empty() ? DType::F32 : p.front().second.dtype();
}

void Module::to(Device d) {
  auto move = [&](const Tensor& t) {
    if (t.device() == d) return;
    Tensor moved = t.detach().to(d);
    TensorImpl* impl = t.impl();
    impl->storage = moved.impl()->storage;
    impl->strides = moved.strides();
    impl->offset = moved.offset();
    impl->grad.reset();
  };
  for (auto& kv : named_parameters()) move(kv.second);
  for (auto& kv : named_buffers()) move(kv.second);
}

void Module::to(DType t) {
  OFA_CHECK(is_floating(t), "Module::to: ", dtype_name(t), " is not a floating dtype");
  auto convert = [&](const Tensor& x) {
    if (x.dtype() == t || !is_floating(x.dtype())) return;
    Tensor c = x.detach().to(t);
    TensorImpl* impl = x.impl();
    impl->storage = c.impl()->storage;
    impl->strides = c.strides();
    impl->offset = c.offset();
    impl->dtype = t;
    impl->grad.reset();
  };
  for (auto& kv : named_parameters()) convert(kv.second);
  for (auto& kv : named_buffers()) convert(kv.second);
}

void Module::zero_grad() {
  for (auto& kv : named_parameters()) kv.second.zero_grad();
}

}  // namespace ofa::nn
