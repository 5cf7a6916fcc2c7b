// libFuzzer target for the safetensors reader (built by scripts/fuzz_safetensors.sh,
// not by CMake). Every input must either parse or throw ofa::Error; anything
// else (a crash, a sanitizer report, another exception, a huge allocation) is
// a bug. What parses must also survive a write/read round trip unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_safetensors: %s\n", what);
    std::abort();
  }
}

void parse_and_round_trip(const uint8_t* data, size_t size) {
  ofa::SafetensorsFile f;
  try {
    f = ofa::parse_safetensors(data, size, "fuzz-input");
  } catch (const ofa::Error& e) {
    check(std::strstr(e.what(), "safetensors file 'fuzz-input': ") == e.what(), "error does not name the file");
    return;
  }
  // Accepted: a plain JSON parse of the header must agree (an object with
  // exactly these entries and metadata).
  uint64_t n = 0;
  std::memcpy(&n, data, 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data + 8, data + 8 + n);
  } catch (const std::exception&) {
    check(false, "accepted a header that is not JSON");
  }
  check(header.is_object(), "accepted a header that is not an object");
  const bool has_meta = header.contains("__metadata__");
  check(header.size() == f.tensors.size() + (has_meta ? 1 : 0), "entry count differs from a plain JSON parse");
  for (const auto& [name, t] : f.tensors) check(header.contains(name), "a tensor is missing from a plain JSON parse");
  if (has_meta && !header["__metadata__"].is_null())
    check(header["__metadata__"].get<std::map<std::string, std::string>>() == f.metadata, "metadata differs");
  // Our writer must write it back and our reader read the same.
  const std::string bytes = ofa::serialize_safetensors(f.tensors, f.metadata);
  const ofa::SafetensorsFile g =
      ofa::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "round-trip");
  check(g.metadata == f.metadata, "metadata changed in a round trip");
  check(g.tensors.size() == f.tensors.size(), "tensor count changed in a round trip");
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const ofa::Tensor& a = f.tensors[i].second;
    const ofa::Tensor& b = g.tensors[i].second;
    check(g.tensors[i].first == f.tensors[i].first, "name changed in a round trip");
    check(a.dtype() == b.dtype() && a.shape() == b.shape(), "dtype or shape changed in a round trip");
    const size_t n = static_cast<size_t>(a.numel()) * ofa::dtype_size(a.dtype());
    check(n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0, "data changed in a round trip");
  }
  check(ofa::serialize_safetensors(g.tensors, g.metadata) == bytes, "writing is not idempotent");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse_and_round_trip(data, size);
  // Random length fields are almost never consistent; this variant reads the
  // first 8 bytes modulo the room left, so the fuzzer reaches the JSON and
  // offset checks far more often.
  if (size >= 8) {
    uint64_t n = 0;
    std::memcpy(&n, data, 8);
    n %= static_cast<uint64_t>(size - 8 + 1);
    std::string fixed(reinterpret_cast<const char*>(data), size);
    std::memcpy(&fixed[0], &n, 8);
    parse_and_round_trip(reinterpret_cast<const uint8_t*>(fixed.data()), fixed.size());
  }
  return 0;
}
