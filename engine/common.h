// Basic types shared by the whole engine: dtypes, devices, shapes, errors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ofa {

// Every size and index is 64-bit.
using Shape = std::vector<int64_t>;

// float32 is the working type; float64 exists for gradient checks; I64 for
// labels and indices. F16/BF16 are reserved: storage can hold them, no kernel
// computes in them yet.
enum class DType : uint8_t { F32 = 0, F64 = 1, I64 = 2, F16 = 3, BF16 = 4 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);
inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64; }

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// Memory order of a 4-D [N, C, H, W] tensor. Logical shapes always follow
// PyTorch (NCHW); ChannelsLast stores them as NHWC, which the conv, BN and
// pooling kernels prefer.
enum class MemoryFormat : uint8_t { Contiguous = 0, ChannelsLast = 1 };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& m) : std::runtime_error(m) {}
};

namespace detail {
inline void format_into(std::ostringstream&) {}
template <class T, class... R>
void format_into(std::ostringstream& os, const T& v, const R&... r) {
  os << v;
  format_into(os, r...);
}
}  // namespace detail

template <class... A>
std::string str_cat(const A&... a) {
  std::ostringstream os;
  detail::format_into(os, a...);
  return os.str();
}

std::string shape_str(const Shape& s);

}  // namespace ofa

// Argument checks at public entry points: the message names what was wrong.
#define OFA_CHECK(cond, ...)                                   \
  do {                                                         \
    if (!(cond)) throw ::ofa::Error(::ofa::str_cat(__VA_ARGS__)); \
  } while (0)
