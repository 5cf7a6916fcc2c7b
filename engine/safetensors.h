// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   UTF-8 JSON object: {"__metadata__": {str: str}, "<name>": {"dtype": "F32",
//             "shape": [2, 3], "data_offsets": [begin, end]}, ...}, padded with spaces
//   the rest  the data buffer: each tensor's bytes, row-major, little-endian, at
//             [begin, end) relative to the start of the buffer, tiling it exactly.
//
// The engine layer knows tensors only; module naming lives in nn/checkpoint.h.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ofa {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;
using SafetensorsMetadata = std::map<std::string, std::string>;

// The reference implementation refuses headers above 100 MB; so do we, before
// allocating anything for it.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;

struct SafetensorsFile {
  std::string path;         // the file (or the name given to parse_safetensors)
  NamedTensorList tensors;  // CPU, contiguous, in data-buffer order (the header order of both writers)
  SafetensorsMetadata metadata;

  bool contains(const std::string& name) const;
  // Throws naming the file and the tensor when it is not there.
  const Tensor& at(const std::string& name) const;
};

// Entry order in the file. AsGiven keeps the caller's order (a state_dict's).
// Reference sorts as the official writer does (descending dtype alignment,
// then name), which also aligns every tensor's data to its element size and
// makes the bytes identical to the official writer's for the same input
// (with at most one metadata entry: it writes metadata in hash order).
enum class SafetensorsOrder { AsGiven, Reference };

// Writes atomically: PATH.tmp.<pid>.<n> is written, fsynced and renamed over
// PATH, then the directory is fsynced, so PATH is always either the old file
// or the complete new one; on failure the temporary is removed. Tensors may be
// views with any strides (saved in row-major logical order), on any device,
// of dtype F32, F64, I64, F16 or BF16. Names must be unique, valid UTF-8 and
// not "__metadata__"; metadata keys and values valid UTF-8. Empty metadata
// writes no "__metadata__" entry.
void save_safetensors(const std::string& path, const NamedTensorList& tensors, const SafetensorsMetadata& metadata = {},
                      SafetensorsOrder order = SafetensorsOrder::AsGiven);
// The same bytes, in memory.
std::string serialize_safetensors(const NamedTensorList& tensors, const SafetensorsMetadata& metadata = {},
                                  SafetensorsOrder order = SafetensorsOrder::AsGiven);

// Reads and validates a whole file; every fault throws ofa::Error naming the
// file, the fault and (where one is involved) the tensor. Nothing larger than
// the header is allocated until the header is validated against the file size.
SafetensorsFile load_safetensors(const std::string& path);
// The same, from bytes in memory (`name` stands for the file in errors).
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace ofa
