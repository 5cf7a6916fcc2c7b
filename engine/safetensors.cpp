// safetensors reader and writer. The reader trusts nothing: the header is
// parsed by a SAX handler that accepts exactly the schema (so no deep or huge
// DOM is ever built), then every offset is checked against the file size
// before any tensor is allocated.
#include "engine/safetensors.h"

#include "engine/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <unordered_set>

#include <nlohmann/json.hpp>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and this code copies host bytes as they are");

namespace ofa {
namespace {

// ------------------------------------------------------------ names and messages

// Quoted for an error message: control bytes escaped, long names cut (a
// hostile header may hold a 100 MB name).
std::string shown(const std::string& s, size_t max = 160) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += str_cat("...(", s.size(), " bytes)");
  return out + "'";
}

[[noreturn]] void fault(const std::string& file, const std::string& what) {
  throw Error(str_cat("safetensors file ", shown(file, 4096), ": ", what));
}

std::string tensor_of(const std::string& name) { return "tensor " + shown(name) + ": "; }

struct DtypeInfo {
  const char* name;
  DType dtype;
  int reference_rank;  // the official writer sorts by this, descending (its enum order)
};
const DtypeInfo kDtypes[] = {
    {"I64", DType::I64, 4}, {"F64", DType::F64, 3}, {"F32", DType::F32, 2},
    {"BF16", DType::BF16, 1}, {"F16", DType::F16, 0},
};
// Valid in the format but not representable here: refused with their own message.
const char* const kUnsupportedDtypes[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3",
                                          "F6_E3M2", "I16", "U16", "I32", "U32", "U64", "C64"};

const DtypeInfo& info_of(DType t) {
  for (const auto& d : kDtypes)
    if (d.dtype == t) return d;
  throw Error(str_cat("safetensors: dtype ", dtype_name(t), " has no safetensors name"));
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

// ------------------------------------------------------------ header parsing

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

struct Layout {
  std::vector<Entry> entries;  // sorted by data offsets
  SafetensorsMetadata metadata;
};

// Accepts exactly {"__metadata__": {str: str} | null, name: {"dtype": str,
// "shape": [uint...], "data_offsets": [uint, uint]}, ...}; anything else stops
// the parse with a message naming the key involved.
class HeaderSax {
 public:
  using json = nlohmann::json;
  std::vector<Entry> entries;
  SafetensorsMetadata metadata;
  std::string error;
  bool done() const { return ctx_ == Ctx::Done; }

  bool null() {
    if (ctx_ == Ctx::Top && key_ == "__metadata__") return true;  // the reference reads null as no metadata
    return wrong("null");
  }
  bool boolean(bool) { return wrong("a boolean"); }
  bool binary(json::binary_t&) { return wrong("binary data"); }
  bool number_integer(json::number_integer_t v) {
    if (ctx_ == Ctx::Shape || ctx_ == Ctx::Offsets)
      return fail(tensor_of(key_) + field_ + " entry " + std::to_string(v) + " is negative");
    return wrong("a number");
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (ctx_ == Ctx::Shape) {
      if (v > static_cast<uint64_t>(INT64_MAX))
        return fail(tensor_of(key_) + "shape entry " + std::to_string(v) + " is too large");
      cur_.shape.push_back(static_cast<int64_t>(v));
      return true;
    }
    if (ctx_ == Ctx::Offsets) {
      if (offsets_.size() == 2) return fail(tensor_of(key_) + "data_offsets has more than two entries");
      offsets_.push_back(v);
      return true;
    }
    return wrong("a number");
  }
  bool number_float(json::number_float_t, const std::string& text) {
    if (ctx_ == Ctx::Shape || ctx_ == Ctx::Offsets)
      return fail(tensor_of(key_) + field_ + " entry " + shown(text) + " is not a non-negative integer");
    return wrong("a number");
  }
  bool string(std::string& s) {
    if (ctx_ == Ctx::Meta) {
      metadata.emplace(meta_key_, s);
      return true;
    }
    if (ctx_ == Ctx::Entry && field_ == "dtype") {
      dtype_ = s;
      return true;
    }
    return wrong("a string");
  }
  bool start_object(std::size_t) {
    if (ctx_ == Ctx::Start) {
      ctx_ = Ctx::Top;
      return true;
    }
    if (ctx_ == Ctx::Top) {
      if (key_ == "__metadata__") {
        ctx_ = Ctx::Meta;
      } else {
        ctx_ = Ctx::Entry;
        cur_ = Entry{};
        cur_.name = key_;
        offsets_.clear();
        dtype_.clear();
        seen_[0] = seen_[1] = seen_[2] = false;
      }
      return true;
    }
    return wrong("an object");
  }
  bool key(std::string& k) {
    switch (ctx_) {
      case Ctx::Top:
        if (!top_keys_.insert(k).second) return fail("duplicate key " + shown(k) + " in the header");
        key_ = k;
        return true;
      case Ctx::Meta:
        if (metadata.count(k)) return fail("duplicate key " + shown(k) + " in __metadata__");
        meta_key_ = k;
        return true;
      case Ctx::Entry: {
        const int idx = k == "dtype" ? 0 : k == "shape" ? 1 : k == "data_offsets" ? 2 : -1;
        if (idx < 0)
          return fail(tensor_of(key_) + "unknown field " + shown(k) +
                      " (an entry has exactly dtype, shape and data_offsets)");
        if (seen_[idx]) return fail(tensor_of(key_) + "duplicate field " + shown(k));
        seen_[idx] = true;
        field_ = k;
        return true;
      }
      default:
        return fail("malformed header (key outside an object)");
    }
  }
  bool end_object() {
    switch (ctx_) {
      case Ctx::Top:
        ctx_ = Ctx::Done;
        return true;
      case Ctx::Meta:
        ctx_ = Ctx::Top;
        return true;
      case Ctx::Entry:
        return finish_entry();
      default:
        return fail("malformed header (unbalanced object)");
    }
  }
  bool start_array(std::size_t) {
    if (ctx_ == Ctx::Entry && field_ == "shape") {
      ctx_ = Ctx::Shape;
      return true;
    }
    if (ctx_ == Ctx::Entry && field_ == "data_offsets") {
      ctx_ = Ctx::Offsets;
      return true;
    }
    return wrong("an array");
  }
  bool end_array() {
    if (ctx_ == Ctx::Shape) {
      ctx_ = Ctx::Entry;
      return true;
    }
    if (ctx_ == Ctx::Offsets) {
      if (offsets_.size() != 2)
        return fail(tensor_of(key_) + "data_offsets has " + std::to_string(offsets_.size()) +
                    " entries; it must be [begin, end]");
      ctx_ = Ctx::Entry;
      return true;
    }
    return fail("malformed header (unbalanced array)");
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& ex) {
    if (error.empty()) error = std::string("header is not valid JSON: ") + ex.what();
    return false;
  }

 private:
  enum class Ctx { Start, Top, Meta, Entry, Shape, Offsets, Done };

  bool fail(const std::string& msg) {
    if (error.empty()) error = msg;
    return false;
  }
  // A value of the wrong JSON type, described by where it stands.
  bool wrong(const std::string& what) {
    switch (ctx_) {
      case Ctx::Start:
        return fail("header is " + what + ", not a JSON object");
      case Ctx::Top:
        if (key_ == "__metadata__") return fail("__metadata__ is " + what + ", not an object of strings");
        return fail(tensor_of(key_) + "entry is " + what + ", not an object");
      case Ctx::Meta:
        return fail("__metadata__ value for key " + shown(meta_key_) + " is " + what + ", not a string");
      case Ctx::Entry:
        if (field_ == "dtype") return fail(tensor_of(key_) + "dtype is " + what + ", not a string");
        return fail(tensor_of(key_) + field_ + " is " + what + ", not an array of non-negative integers");
      case Ctx::Shape:
      case Ctx::Offsets:
        return fail(tensor_of(key_) + field_ + " entry is " + what + ", not a non-negative integer");
      default:
        return fail("malformed header (" + what + " after the end)");
    }
  }
  bool finish_entry() {
    static const char* const fields[3] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; ++i)
      if (!seen_[i]) return fail(tensor_of(key_) + "missing field '" + fields[i] + "'");
    bool found = false;
    for (const auto& d : kDtypes)
      if (dtype_ == d.name) cur_.dtype = d.dtype, found = true;
    if (!found) {
      for (const char* u : kUnsupportedDtypes)
        if (dtype_ == u)
          return fail(tensor_of(key_) + "dtype " + shown(dtype_) +
                      " is valid safetensors but not supported by this engine (F32, F64, I64, F16, BF16 are)");
      return fail(tensor_of(key_) + "unknown dtype " + shown(dtype_));
    }
    cur_.begin = offsets_[0];
    cur_.end = offsets_[1];
    entries.push_back(std::move(cur_));
    ctx_ = Ctx::Top;
    return true;
  }

  Ctx ctx_ = Ctx::Start;
  std::unordered_set<std::string> top_keys_;
  std::string key_, meta_key_, field_, dtype_;
  Entry cur_;
  std::vector<uint64_t> offsets_;
  bool seen_[3] = {false, false, false};
};

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The header length against the limit and the file; returns the data buffer's length.
uint64_t check_header_length(uint64_t n, uint64_t file_size, const std::string& file) {
  if (file_size < 8) fault(file, str_cat("file is ", file_size, " bytes, too short for the 8-byte header length"));
  if (n > kSafetensorsMaxHeaderBytes)
    fault(file, str_cat("header length ", n, " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes"));
  if (n > file_size - 8)
    fault(file, str_cat("header length ", n, " runs past the end of the file (", file_size - 8,
                        " bytes follow the length field): truncated file or corrupt length"));
  return file_size - 8 - n;
}

// Parses and validates the header against a data buffer of `buffer_len` bytes.
Layout parse_layout(const char* header, uint64_t n, uint64_t buffer_len, const std::string& file) {
  if (n == 0 || header[0] != '{') fault(file, "header does not start with '{' (not a safetensors file?)");
  // nlohmann's lexer takes a NUL byte for the end of input, which would let
  // anything after one pass unread; JSON has no place for a raw NUL.
  if (const void* nul = std::memchr(header, '\0', n))
    fault(file, str_cat("header holds a NUL byte at offset ", static_cast<const char*>(nul) - header,
                        " (not valid JSON)"));
  HeaderSax sax;
  const bool ok = nlohmann::json::sax_parse(header, header + n, &sax, nlohmann::json::input_format_t::json,
                                            /*strict=*/true, /*ignore_comments=*/false);
  if (!ok || !sax.done()) fault(file, sax.error.empty() ? std::string("header is not valid JSON") : sax.error);

  std::vector<Entry>& es = sax.entries;
  for (const Entry& e : es) {
    const size_t esize = dtype_size(e.dtype);
    // Every stride must fit in int64, so the product of the non-zero sizes must.
    uint64_t span = 1, numel = 1;
    for (int64_t d : e.shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      if (__builtin_mul_overflow(span, u == 0 ? 1 : u, &span) || span > static_cast<uint64_t>(INT64_MAX))
        fault(file, tensor_of(e.name) + "shape " + shape_str(e.shape) + " has more elements than fit in 64 bits");
      numel *= u;  // <= span
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(esize), &bytes))
      fault(file, tensor_of(e.name) + "shape " + shape_str(e.shape) + " needs more bytes than fit in 64 bits");
    if (e.end < e.begin)
      fault(file, tensor_of(e.name) + str_cat("data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
    if (e.end - e.begin != bytes)
      fault(file, tensor_of(e.name) + str_cat("data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
                                             " bytes but shape ", shape_str(e.shape), " of ", info_of(e.dtype).name,
                                             " needs ", bytes));
  }
  // The data must tile the buffer exactly; the header's order need not be the
  // data's (the reference reader sorts too).
  std::stable_sort(es.begin(), es.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (size_t i = 0; i < es.size(); ++i) {
    const Entry& e = es[i];
    if (e.begin > pos)
      fault(file, tensor_of(e.name) + str_cat("hole in the data buffer: bytes [", pos, ", ", e.begin,
                                             ") before this tensor's data belong to no tensor"));
    if (e.begin < pos)
      fault(file, tensor_of(e.name) + str_cat("data_offsets [", e.begin, ", ", e.end, "] overlap the data of tensor ",
                                             shown(es[i - 1].name), " at [", es[i - 1].begin, ", ", es[i - 1].end, "]"));
    pos = e.end;
  }
  if (pos < buffer_len)
    fault(file, str_cat("the tensors cover ", pos, " bytes of data but ", buffer_len, " follow the header: ",
                        buffer_len - pos, " trailing bytes"));
  if (pos > buffer_len)
    fault(file, str_cat("the tensors need ", pos, " bytes of data but only ", buffer_len,
                        " follow the header: truncated file"));
  return Layout{std::move(es), std::move(sax.metadata)};
}

// ------------------------------------------------------------ writing

struct Plan {
  std::string header;  // length field + padded JSON
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU, in file order
};

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {  // serde_json's escapes, so the bytes match the official writer's
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

Plan make_plan(const NamedTensorList& tensors, const SafetensorsMetadata& metadata, SafetensorsOrder order,
               const std::string& who) {
  std::unordered_set<std::string> names;
  for (const auto& [name, t] : tensors) {
    OFA_CHECK(name != "__metadata__", who, ": a tensor may not be named '__metadata__' (the header's metadata key)");
    OFA_CHECK(valid_utf8(name), who, ": tensor name ", shown(name), " is not valid UTF-8");
    OFA_CHECK(names.insert(name).second, who, ": tensor name ", shown(name), " appears twice");
    OFA_CHECK(t.defined(), who, ": tensor ", shown(name), " is undefined");
    info_of(t.dtype());
  }
  for (const auto& [k, v] : metadata) {
    OFA_CHECK(valid_utf8(k), who, ": metadata key ", shown(k), " is not valid UTF-8");
    OFA_CHECK(valid_utf8(v), who, ": metadata value for key ", shown(k), " is not valid UTF-8");
  }
  std::vector<size_t> idx(tensors.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  if (order == SafetensorsOrder::Reference) {
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      const int ra = info_of(tensors[a].second.dtype()).reference_rank;
      const int rb = info_of(tensors[b].second.dtype()).reference_rank;
      return ra != rb ? ra > rb : tensors[a].first < tensors[b].first;
    });
  }
  Plan plan;
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) json += ',';
      first = false;
      append_json_string(json, k);
      json += ':';
      append_json_string(json, v);
    }
    json += '}';
  }
  uint64_t offset = 0;
  for (size_t i : idx) {
    const auto& [name, t] = tensors[i];
    Tensor c = t.detach();
    if (!c.device().is_cpu()) c = c.to(Device::cpu());
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * dtype_size(c.dtype());
    if (json.size() > 1) json += ',';
    append_json_string(json, name);
    json += str_cat(":{\"dtype\":\"", info_of(c.dtype()).name, "\",\"shape\":[");
    for (size_t d = 0; d < c.shape().size(); ++d) json += str_cat(d ? "," : "", c.shape()[d]);
    json += str_cat("],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
    plan.tensors.emplace_back(name, c);
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');  // the reference pads to 8 so the data starts aligned
  OFA_CHECK(json.size() <= kSafetensorsMaxHeaderBytes, who, ": the header would be ", json.size(),
            " bytes, above the format's limit of ", kSafetensorsMaxHeaderBytes);
  uint64_t n = json.size();
  plan.header.resize(8);
  for (int i = 0; i < 8; ++i) plan.header[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  plan.header += json;
  return plan;
}

// Calls sink(ptr, nbytes) with the tensor's bytes in row-major logical order.
template <class Sink>
void emit_bytes(const Tensor& t, Sink&& sink) {
  if (!t.device().is_cpu()) return emit_bytes(t.to(Device::cpu()), sink);  // a device tensor: its host copy
  const int64_t numel = t.numel();
  if (numel == 0) return;
  const size_t es = dtype_size(t.dtype());
  const char* base = static_cast<const char*>(t.raw_data());
  if (t.dim() == 0 || t.is_contiguous()) {
    sink(base, static_cast<size_t>(numel) * es);
    return;
  }
  // Any strides (channels-last, slices, expands): walk the logical order.
  const int64_t nd = t.dim();
  const Shape& sh = t.shape();
  const Shape& st = t.strides();
  const int64_t inner = sh[nd - 1], inner_stride = st[nd - 1];
  std::vector<char> buf(static_cast<size_t>(numel) * es);
  char* out = buf.data();
  std::vector<int64_t> idx(nd, 0);
  for (int64_t done = 0; done < numel; done += inner) {
    int64_t off = 0;
    for (int64_t d = 0; d + 1 < nd; ++d) off += idx[d] * st[d];
    const char* p = base + off * static_cast<int64_t>(es);
    if (inner_stride == 1) {
      std::memcpy(out, p, static_cast<size_t>(inner) * es);
      out += inner * es;
    } else {
      for (int64_t i = 0; i < inner; ++i, out += es) std::memcpy(out, p + i * inner_stride * static_cast<int64_t>(es), es);
    }
    for (int64_t d = nd - 2; d >= 0; --d) {
      if (++idx[d] < sh[d]) break;
      idx[d] = 0;
    }
  }
  sink(buf.data(), buf.size());
}

}  // namespace

// ------------------------------------------------------------ public API

bool SafetensorsFile::contains(const std::string& name) const {
  for (const auto& [k, t] : tensors)
    if (k == name) return true;
  return false;
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [k, t] : tensors)
    if (k == name) return t;
  fault(path, "no tensor named " + shown(name));
}

std::string serialize_safetensors(const NamedTensorList& tensors, const SafetensorsMetadata& metadata,
                                  SafetensorsOrder order) {
  Plan plan = make_plan(tensors, metadata, order, "serialize_safetensors");
  std::string out = std::move(plan.header);
  for (const auto& [name, t] : plan.tensors) emit_bytes(t, [&](const char* p, size_t n) { out.append(p, n); });
  return out;
}

void save_safetensors(const std::string& path, const NamedTensorList& tensors, const SafetensorsMetadata& metadata,
                      SafetensorsOrder order) {
  const std::string who = "save_safetensors " + shown(path, 4096);
  Plan plan = make_plan(tensors, metadata, order, who);  // all checks before touching the disk
  write_file_atomic(
      path,
      [&](const ByteSink& sink) {
        sink(plan.header.data(), plan.header.size());
        for (const auto& [name, t] : plan.tensors) emit_bytes(t, sink);
      },
      who);
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 8) check_header_length(0, size, name);
  const uint64_t n = read_le64(data);
  const uint64_t buffer_len = check_header_length(n, size, name);
  Layout layout = parse_layout(reinterpret_cast<const char*>(data + 8), n, buffer_len, name);
  SafetensorsFile f;
  f.path = name;
  f.metadata = std::move(layout.metadata);
  const uint8_t* buffer = data + 8 + n;
  for (Entry& e : layout.entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), buffer + e.begin, e.end - e.begin);
    f.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return f;
}

SafetensorsFile load_safetensors(const std::string& path) {
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fault(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(file.fd, &st) != 0) fault(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fault(path, "not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // Reads exactly n bytes at `at`; a short read means the file changed under us.
  auto read_exact = [&](void* dst, uint64_t n, uint64_t at) {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t r = ::pread(file.fd, p, std::min<uint64_t>(n, 1u << 30), static_cast<off_t>(at));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fault(path, std::string("read error: ") + std::strerror(errno));
      if (r == 0) fault(path, "file shrank while it was being read");
      p += r, at += static_cast<uint64_t>(r), n -= static_cast<uint64_t>(r);
    }
  };
  if (size < 8) check_header_length(0, size, path);
  uint8_t len[8];
  read_exact(len, 8, 0);
  const uint64_t n = read_le64(len);
  const uint64_t buffer_len = check_header_length(n, size, path);
  std::string header(n, '\0');  // bounded by the limit and by the file's size
  read_exact(header.data(), n, 8);
  Layout layout = parse_layout(header.data(), n, buffer_len, path);
  SafetensorsFile f;
  f.path = path;
  f.metadata = std::move(layout.metadata);
  for (Entry& e : layout.entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) read_exact(t.raw_data(), e.end - e.begin, 8 + n + e.begin);
    f.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return f;
}

}  // namespace ofa
