#include "nn/checkpoint.h"

#include <set>
#include <unordered_map>

namespace ofa::nn {

std::string map_reference_key(const std::string& key) {
  static const std::string from = ".mobile_inverted_conv.", to = ".conv.";
  std::string out = key;
  for (size_t pos = out.find(from); pos != std::string::npos; pos = out.find(from, pos + to.size()))
    out.replace(pos, from.size(), to);
  return out;
}

LoadResult load_module_state(Module& m, const SafetensorsFile& file, const CheckpointLoadOptions& opt) {
  NamedTensors state;
  std::vector<std::string> problems;
  std::unordered_map<std::string, std::string> source;  // mapped key -> the file's key
  for (const auto& [k, t] : file.tensors) {
    const std::string key = opt.rename ? opt.rename(k) : k;
    auto [it, fresh] = source.emplace(key, k);
    if (!fresh) {
      problems.push_back("file keys '" + it->second + "' and '" + k + "' both map to '" + key + "'");
      continue;
    }
    state.emplace_back(key, t);
  }
  // The checks of Module::load_state_dict plus dtypes, done here first so that
  // one message lists everything; load_state_dict then copies (and re-checks).
  const NamedTensors mine = m.state_dict();
  std::unordered_map<std::string, const Tensor*> given;
  for (const auto& [k, t] : state) given.emplace(k, &t);
  LoadResult res;
  std::set<std::string> known;
  for (const auto& [k, t] : mine) {
    known.insert(k);
    auto it = given.find(k);
    if (it == given.end()) {
      res.missing_keys.push_back(k);
      continue;
    }
    const Tensor& g = *it->second;
    const std::string from = source.at(k) == k ? "" : " (file key '" + source.at(k) + "')";
    if (g.shape() != t.shape())
      problems.push_back(str_cat("size mismatch for '", k, "'", from, ": the file has shape ", shape_str(g.shape()),
                                 ", the module has ", shape_str(t.shape())));
    else if (g.dtype() != t.dtype())
      problems.push_back(str_cat("dtype mismatch for '", k, "'", from, ": the file has ", dtype_name(g.dtype()),
                                 ", the module has ", dtype_name(t.dtype())));
  }
  for (const auto& [k, t] : state)
    if (!known.count(k)) res.unexpected_keys.push_back(k);
  if (opt.strict) {
    for (const auto& k : res.missing_keys) problems.push_back("missing key '" + k + "'");
    for (const auto& k : res.unexpected_keys)
      problems.push_back("unexpected key '" + k + "'" + (source.at(k) == k ? "" : " (file key '" + source.at(k) + "')"));
  }
  if (!problems.empty()) {
    std::string msg = str_cat("load_module_state: '", file.path, "': ", problems.size(), " problem(s), nothing was loaded:");
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  try {
    return m.load_state_dict(state, opt.strict);
  } catch (const Error& e) {
    throw Error(str_cat("load_module_state: '", file.path, "': ", e.what()));
  }
}

LoadResult load_module_state(Module& m, const std::string& path, const CheckpointLoadOptions& opt) {
  return load_module_state(m, load_safetensors(path), opt);
}

void save_module_state(const std::string& path, const Module& m, const SafetensorsMetadata& metadata) {
  save_safetensors(path, m.state_dict(), metadata);
}

}  // namespace ofa::nn
