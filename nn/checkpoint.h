// Module checkpoints in safetensors files: save a module's state_dict, and
// load one strictly, with the OFA reference's older key names mapped.
#pragma once
#include <functional>
#include <string>

#include "engine/safetensors.h"
#include "nn/module.h"

namespace ofa::nn {

// The reference renamed MobileInvertedResidualBlock.mobile_inverted_conv to
// .conv; its own load_state_dict maps the old name, and so does this.
std::string map_reference_key(const std::string& key);

struct CheckpointLoadOptions {
  // With strict, missing and unexpected keys are errors (as in PyTorch).
  bool strict = true;
  // Applied to every key of the file before matching (identity when empty).
  std::function<std::string(const std::string&)> rename = map_reference_key;
};

// Copies the file's tensors into the module's parameters and buffers in
// place. Every problem (missing key, unexpected key, shape or dtype mismatch,
// two file keys mapping to one name) is listed in a single ofa::Error naming
// the file, and then nothing is loaded. Dtypes must match exactly: a
// checkpoint that silently changes precision is a bug.
LoadResult load_module_state(Module& m, const SafetensorsFile& file, const CheckpointLoadOptions& opt = {});
LoadResult load_module_state(Module& m, const std::string& path, const CheckpointLoadOptions& opt = {});

// Writes m.state_dict() in state_dict order, atomically (see save_safetensors).
void save_module_state(const std::string& path, const Module& m, const SafetensorsMetadata& metadata = {});

}  // namespace ofa::nn
