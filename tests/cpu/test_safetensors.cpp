// safetensors: round trips (dtypes, 0-D and empty shapes, views and
// channels-last inputs, metadata), byte identity with the official writer's
// golden file, one test per kind of malformed file, the committed bad files,
// and the atomic write.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/safetensors.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;
namespace fs = std::filesystem;

namespace {


std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The raw bytes of a tensor in row-major order.
std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
}

Tensor from_bits16(const std::vector<uint16_t>& bits, const Shape& shape, DType dt) {
  Tensor t = empty(shape, dt);
  std::memcpy(t.raw_data(), bits.data(), bits.size() * 2);
  return t;
}

// Same names in the same order, same dtypes, shapes and bytes; loaded tensors contiguous.
::testing::AssertionResult same_tensors(const NamedTensorList& want, const NamedTensorList& got) {
  if (want.size() != got.size())
    return ::testing::AssertionFailure() << want.size() << " tensors expected, got " << got.size();
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& [wn, wt] = want[i];
    const auto& [gn, gt] = got[i];
    if (wn != gn) return ::testing::AssertionFailure() << "entry " << i << ": name '" << gn << "', expected '" << wn << "'";
    if (wt.dtype() != gt.dtype()) return ::testing::AssertionFailure() << wn << ": dtype " << dtype_name(gt.dtype());
    if (wt.shape() != gt.shape()) return ::testing::AssertionFailure() << wn << ": shape " << shape_str(gt.shape());
    if (!gt.is_contiguous() || !gt.device().is_cpu())
      return ::testing::AssertionFailure() << wn << ": loaded tensor not CPU-contiguous";
    if (bytes_of(wt) != bytes_of(gt)) return ::testing::AssertionFailure() << wn << ": bytes differ";
  }
  return ::testing::AssertionSuccess();
}

NamedTensorList mixed_tensors() {
  return {
      {"w.f32", randn_t({2, 3}, 1, DType::F32)},
      {"w.f64", randn_t({3, 4, 5}, 2, DType::F64)},
      {"idx", from_vector<int64_t>({0, -1, INT64_MAX, INT64_MIN, 42, 7, -9}, {7})},
      {"scalar.f32", scalar_tensor(2.5, DType::F32)},
      {"scalar.i64", scalar_tensor(-3, DType::I64)},
      {"empty.f32", empty({0, 3}, DType::F32)},
      {"empty.f64", empty({2, 0}, DType::F64)},
      {"empty.1d", empty({0}, DType::I64)},
      {"half", from_bits16({0x3c00, 0xb800, 0x7c00}, {3}, DType::F16)},
      {"bf", from_bits16({0x3f80, 0xc040}, {2, 1}, DType::BF16)},
  };
}

// A file from a header text and a data buffer; `declared` overrides the length field.
std::string st_bytes(const std::string& header, const std::string& data = "", int64_t declared = -1) {
  const uint64_t n = declared < 0 ? header.size() : static_cast<uint64_t>(declared);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

// The message of loading these bytes from a file (also checks the in-memory
// parser says the same, with the name it was given).
std::string load_error(const std::string& bytes, const TempDir& dir, const std::string& name = "bad.safetensors") {
  const std::string path = dir.file(name);
  write_all(path, bytes);
  const std::string from_file = error_of([&] { load_safetensors(path); });
  const std::string from_memory = error_of([&] {
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
  });
  EXPECT_EQ(from_file, from_memory);
  return from_file;
}

const std::string kF32x2 = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

// ------------------------------------------------------------ round trips

TEST(SafetensorsRoundTrip, AllDtypesZeroDimAndEmptyShapesThroughAFile) {
  TempDir dir;
  const NamedTensorList ts = mixed_tensors();
  save_safetensors(dir.file("m.safetensors"), ts);
  const SafetensorsFile f = load_safetensors(dir.file("m.safetensors"));
  EXPECT_TRUE(same_tensors(ts, f.tensors));  // order kept, as given
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(f.path, dir.file("m.safetensors"));
  EXPECT_EQ(f.at("idx").to_vector<int64_t>(), (std::vector<int64_t>{0, -1, INT64_MAX, INT64_MIN, 42, 7, -9}));
  EXPECT_EQ(f.at("scalar.f32").dim(), 0);
  EXPECT_EQ(f.at("scalar.f32").item(), 2.5);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});  // no temporary left
}

TEST(SafetensorsRoundTrip, InMemoryBytesEqualTheFile) {
  TempDir dir;
  const NamedTensorList ts = mixed_tensors();
  const std::string bytes = serialize_safetensors(ts, {{"k", "v"}});
  save_safetensors(dir.file("m.safetensors"), ts, {{"k", "v"}});
  EXPECT_EQ(read_all(dir.file("m.safetensors")), bytes);
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  EXPECT_TRUE(same_tensors(ts, f.tensors));
  EXPECT_EQ(f.metadata.at("k"), "v");
}

TEST(SafetensorsRoundTrip, NoTensorsNoMetadata) {
  const std::string bytes = serialize_safetensors({});
  EXPECT_EQ(bytes, st_bytes("{}      "));
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
}

TEST(SafetensorsRoundTrip, ViewsAreSavedInRowMajorLogicalOrder) {
  TempDir dir;
  const Tensor base = randn_t({4, 6, 5}, 3, DType::F32);
  const Tensor x4 = randn_t({2, 3, 4, 5}, 4, DType::F64);
  const Tensor cl = x4.contiguous(MemoryFormat::ChannelsLast);
  ASSERT_FALSE(cl.is_contiguous());
  const Tensor ints = arange(24).reshape({4, 6});
  const NamedTensorList ts = {
      {"transposed", base.transpose(0, 2)},
      {"stepped", base.slice(1, 1, 6, 2)},
      {"narrowed", base.narrow(0, 1, 2).narrow(2, 1, 3)},
      {"expanded", from_vector<double>({1, 2, 3}, {3, 1}).expand({3, 4})},
      {"channels_last", cl},
      {"permuted_i64", ints.permute({1, 0})},
      {"selected_0d", base.select(0, 1).select(0, 2).select(0, 3)},
  };
  save_safetensors(dir.file("v.safetensors"), ts);
  const SafetensorsFile f = load_safetensors(dir.file("v.safetensors"));
  EXPECT_TRUE(same_tensors(ts, f.tensors));
  // Independent of bytes_of: values by logical index.
  EXPECT_TRUE(all_close(f.at("channels_last"), x4, 0, 0));
  EXPECT_EQ(f.at("channels_last").strides(), contiguous_strides({2, 3, 4, 5}));
  const Tensor tr = f.at("transposed");
  EXPECT_EQ(tr.shape(), (Shape{5, 6, 4}));
  const float* p = tr.data<float>();
  const float* b = base.contiguous().data<float>();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 6; ++j)
      for (int k = 0; k < 4; ++k) ASSERT_EQ(p[(i * 6 + j) * 4 + k], b[(k * 6 + j) * 5 + i]);
  EXPECT_EQ(f.at("permuted_i64").to_vector<int64_t>()[1], 6);
  EXPECT_EQ(f.at("expanded").to_vector<double>(), (std::vector<double>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
}

TEST(SafetensorsRoundTrip, TensorsThatRequireGradAreSavedDetached) {
  Tensor w = randn_t({3}, 5, DType::F64);
  w.set_requires_grad(true);
  const std::string bytes = serialize_safetensors({{"w", w}});
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  EXPECT_FALSE(f.at("w").requires_grad());
  EXPECT_TRUE(all_close(f.at("w"), w.detach(), 0, 0));
}

TEST(SafetensorsRoundTrip, MetadataWithSpecialCharacters) {
  TempDir dir;
  const SafetensorsMetadata md = {{"format", "pt"},
                                  {"quote\"back\\slash", "line\nbreak\ttab\x01\x1f\x7f"},
                                  {"unicode", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
                                  {"empty", ""},
                                  {"", "empty key"},
                                  {"json", R"({"a": [1, 2]})"}};
  save_safetensors(dir.file("md.safetensors"), {{"w", ones({2})}}, md);
  const SafetensorsFile f = load_safetensors(dir.file("md.safetensors"));
  EXPECT_EQ(f.metadata, md);
}

TEST(SafetensorsRoundTrip, HeaderIsCompactJsonPaddedWithSpacesToEightBytes) {
  const std::string bytes = serialize_safetensors({{"w", ones({2})}}, {{"k", "v"}});
  const std::string json = R"({"__metadata__":{"k":"v"},)" + kF32x2 + "}";
  const size_t padded = (json.size() + 7) / 8 * 8;
  ASSERT_EQ(bytes.size(), 8 + padded + 8);
  EXPECT_EQ(bytes.substr(0, 8 + padded), st_bytes(json + std::string(padded - json.size(), ' ')));
  for (size_t name_len = 1; name_len < 10; ++name_len) {  // every padding amount
    const std::string b = serialize_safetensors({{std::string(name_len, 'x'), ones({1})}});
    uint64_t n = 0;
    std::memcpy(&n, b.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(b.size(), 8 + n + 4);
    const std::string header = b.substr(8, n);
    const size_t close = header.find_last_not_of(' ');
    ASSERT_EQ(header[close], '}');
    EXPECT_LT(n - (close + 1), 8u) << "padding only up to the next multiple of 8";
  }
}

TEST(SafetensorsRoundTrip, ReferenceOrderSortsByAlignmentThenName) {
  const NamedTensorList ts = mixed_tensors();
  const std::string bytes = serialize_safetensors(ts, {}, SafetensorsOrder::Reference);
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  std::vector<std::string> names;
  for (const auto& [n, t] : f.tensors) names.push_back(n);
  // I64, F64, F32, BF16, F16; names ascending within a dtype.
  EXPECT_EQ(names, (std::vector<std::string>{"empty.1d", "idx", "scalar.i64", "empty.f64", "w.f64", "empty.f32",
                                             "scalar.f32", "w.f32", "bf", "half"}));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  size_t pos = 0;  // each tensor's data starts aligned to its element size
  for (const auto& [name, t] : f.tensors) {
    EXPECT_EQ(pos % dtype_size(t.dtype()), 0u) << name;
    pos += static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
  }
}

// ------------------------------------------------------------ the official writer

namespace {
const std::string kGolden = std::string(OFA_TEST_DATA_DIR) + "/safetensors_golden.safetensors";

NamedTensorList golden_tensors() {  // what make_safetensors_golden.py writes
  return {
      {"c", from_vector<int64_t>({1, -2, 9007199254740993LL, INT64_MIN}, {2, 2})},
      {"b", from_vector<double>({0.1, -2.5, 1e300}, {3})},
      {"a", from_vector<float>({-1, -0.5, 0, 0.5, 1, 1.5}, {2, 3})},
      {"e", empty({0, 3}, DType::F32)},
      {"z", scalar_tensor(3.25, DType::F32)},
      {"bf", from_bits16({0x3F80, 0xC040}, {2}, DType::BF16)},
      {"h", from_bits16({0x3C00, 0xB800}, {2}, DType::F16)},
  };
}
}  // namespace

TEST(SafetensorsGolden, ReadsTheOfficialWritersFile) {
  const SafetensorsFile f = load_safetensors(kGolden);
  EXPECT_EQ(f.metadata, (SafetensorsMetadata{{"format", "pt"}}));
  // The official writer's order is its sort order (I64, F64, F32 by name, BF16, F16).
  EXPECT_TRUE(same_tensors(golden_tensors(), f.tensors));
  EXPECT_EQ(f.at("c").to_vector<int64_t>()[2], 9007199254740993LL);
  EXPECT_EQ(f.at("b").to_vector<double>()[0], 0.1);
}

TEST(SafetensorsGolden, ReferenceOrderGivesTheOfficialWritersBytes) {
  NamedTensorList shuffled = golden_tensors();
  std::reverse(shuffled.begin(), shuffled.end());
  const std::string golden = read_all(kGolden);
  ASSERT_EQ(golden.size(), 524u);
  EXPECT_EQ(serialize_safetensors(shuffled, {{"format", "pt"}}, SafetensorsOrder::Reference), golden);
  // AsGiven differs only in order; both read back to the same named tensors.
  const std::string ours = serialize_safetensors(shuffled, {{"format", "pt"}});
  EXPECT_NE(ours, golden);
  EXPECT_EQ(ours.size(), golden.size());
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(ours.data()), ours.size(), "mem");
  EXPECT_TRUE(same_tensors(shuffled, f.tensors));
}

// ------------------------------------------------------------ writer argument errors

TEST(SafetensorsWrite, RefusesBadNamesAndTensorsBeforeTouchingTheDisk) {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  auto err = [&](const NamedTensorList& ts, const SafetensorsMetadata& md = {}) {
    return error_of([&] { save_safetensors(path, ts, md); });
  };
  std::string e = err({{"w", ones({1})}, {"w", ones({2})}});
  EXPECT_TRUE(has(e, "'w' appears twice") && has(e, path)) << e;
  e = err({{"__metadata__", ones({1})}});
  EXPECT_TRUE(has(e, "'__metadata__'")) << e;
  e = err({{"w", Tensor()}});
  EXPECT_TRUE(has(e, "'w' is undefined")) << e;
  e = err({{"bad\xff", ones({1})}});
  EXPECT_TRUE(has(e, "not valid UTF-8")) << e;
  e = err({{"w", ones({1})}}, {{"k", "\xc0\x80"}});  // overlong NUL
  EXPECT_TRUE(has(e, "metadata value for key 'k' is not valid UTF-8")) << e;
  EXPECT_TRUE(dir.entries().empty());
}

// ------------------------------------------------------------ malformed files

struct BadCase {
  const char* label;
  std::string bytes;
  std::vector<std::string> expect;  // parts of the message besides the file name
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.label; }

class SafetensorsMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsMalformed, IsRefusedNamingTheFileAndTheFault) {
  TempDir dir;
  const std::string e = load_error(GetParam().bytes, dir);
  EXPECT_TRUE(has(e, "safetensors file '" + dir.file("bad.safetensors") + "'")) << e;
  for (const auto& part : GetParam().expect) EXPECT_TRUE(has(e, part)) << "expected '" << part << "' in: " << e;
}

namespace {
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offs) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}";
}
const std::string k8(8, '\x01');
const std::string k24(24, '\x02');
}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Kinds, SafetensorsMalformed,
    ::testing::Values(
        // -- truncation and lengths
        BadCase{"Empty", "", {"0 bytes, too short for the 8-byte header length"}},
        BadCase{"SevenBytes", std::string(7, '\0'), {"7 bytes, too short"}},
        BadCase{"HeaderLongerThanFile", st_bytes("{}", "", 64), {"header length 64 runs past the end", "truncated"}},
        BadCase{"HugeHeaderLength", st_bytes("{}", "", INT64_MAX), {"exceeds the limit of 100000000 bytes"}},
        BadCase{"HeaderJustOverLimit", st_bytes("{}", "", 100000001), {"header length 100000001 exceeds the limit"}},
        BadCase{"ZeroHeaderLength", st_bytes("", "{}"), {"does not start with '{'"}},
        BadCase{"DataTruncated", st_bytes("{" + kF32x2 + "}", std::string(5, 'x')),
                {"need 8 bytes of data but only 5", "truncated"}},
        // -- not JSON, not an object
        BadCase{"NotJson", st_bytes("{not json}"), {"header is not valid JSON"}},
        BadCase{"UnclosedObject", st_bytes("{\"w\":{\"dtype\":\"F32\""), {"header is not valid JSON"}},
        BadCase{"GarbageAfterObject", st_bytes("{} x"), {"header is not valid JSON"}},
        BadCase{"SecondObject", st_bytes("{}{}"), {"header is not valid JSON"}},
        BadCase{"TopLevelArray", st_bytes("[1, 2]"), {"does not start with '{'"}},
        BadCase{"LeadingSpace", st_bytes(" {}"), {"does not start with '{'"}},
        BadCase{"InvalidUtf8", st_bytes("{\"w\xff\":{}}"), {"header is not valid JSON", "UTF-8"}},
        BadCase{"Comment", st_bytes("{/* c */}"), {"header is not valid JSON"}},
        BadCase{"NulAfterObject", st_bytes(std::string("{}\0garbage", 10)), {"header holds a NUL byte at offset 2"}},
        BadCase{"NulPadding", st_bytes(std::string("{}\0\0\0\0\0\0", 8)), {"NUL byte at offset 2"}},
        // -- wrong JSON types
        BadCase{"EntryNotObject", st_bytes("{\"w\":[1]}"), {"tensor 'w': entry is an array, not an object"}},
        BadCase{"EntryNumber", st_bytes("{\"w\":3}"), {"tensor 'w': entry is a number, not an object"}},
        BadCase{"DtypeNotString", st_bytes(R"({"w":{"dtype":4,"shape":[],"data_offsets":[0,4]}})"),
                {"tensor 'w': dtype is a number, not a string"}},
        BadCase{"ShapeNotArray", st_bytes(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})"),
                {"tensor 'w': shape is a string, not an array"}},
        BadCase{"ShapeNested", st_bytes(R"({"w":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})"),
                {"tensor 'w': shape entry is an array"}},
        BadCase{"ShapeFloat", st_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})"),
                {"tensor 'w': shape entry '2.0' is not a non-negative integer"}},
        BadCase{"ShapeNegative", st_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"),
                {"tensor 'w': shape entry -2 is negative"}},
        BadCase{"ShapeHuge", st_bytes(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})"),
                {"tensor 'w': shape entry 18446744073709551615 is too large"}},
        BadCase{"ShapeNull", st_bytes(R"({"w":{"dtype":"F32","shape":null,"data_offsets":[0,8]}})"),
                {"tensor 'w': shape is null"}},
        BadCase{"OffsetsThree", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})"),
                {"tensor 'w': data_offsets has more than two entries"}},
        BadCase{"OffsetsOne", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}})"),
                {"tensor 'w': data_offsets has 1 entries; it must be [begin, end]"}},
        BadCase{"OffsetsNegative", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})"),
                {"tensor 'w': data_offsets entry -8 is negative"}},
        BadCase{"OffsetsBool", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[false,8]}})"),
                {"tensor 'w': data_offsets entry is a boolean"}},
        BadCase{"MissingField", st_bytes(R"({"w":{"dtype":"F32","shape":[2]}})"), {"tensor 'w': missing field 'data_offsets'"}},
        BadCase{"UnknownField", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})"),
                {"tensor 'w': unknown field 'extra'"}},
        BadCase{"DuplicateField", st_bytes(R"({"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
                {"tensor 'w': duplicate field 'dtype'"}},
        // -- dtypes
        BadCase{"UnknownDtype", st_bytes(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", k8),
                {"tensor 'w': unknown dtype 'F33'"}},
        BadCase{"LowercaseDtype", st_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", k8),
                {"tensor 'w': unknown dtype 'f32'"}},
        BadCase{"UnsupportedDtype", st_bytes(R"({"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", k8),
                {"tensor 'w': dtype 'I32' is valid safetensors but not supported"}},
        // -- offsets and sizes
        BadCase{"SizeMismatch", st_bytes("{" + entry("w", "F32", "[2,3]", "[0,20]") + "}", std::string(20, 'x')),
                {"tensor 'w': data_offsets [0, 20] hold 20 bytes but shape [2, 3] of F32 needs 24"}},
        BadCase{"OffsetsReversed", st_bytes("{" + entry("w", "F32", "[2]", "[8,0]") + "}", k8),
                {"tensor 'w': data_offsets [8, 0] end before they begin"}},
        BadCase{"Overlap", st_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
                                    std::string(12, 'x')),
                {"tensor 'b': data_offsets [4, 12] overlap the data of tensor 'a' at [0, 8]"}},
        BadCase{"SameOffsets", st_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[0,8]") + "}", k8),
                {"overlap the data of tensor"}},
        BadCase{"EmptyInsideAnother", st_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("e", "F32", "[0]", "[4,4]") + "}", k8),
                {"tensor 'e': data_offsets [4, 4] overlap the data of tensor 'a'"}},
        BadCase{"Hole", st_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[16,24]") + "}", k24),
                {"tensor 'b': hole in the data buffer: bytes [8, 16)"}},
        BadCase{"NotStartingAtZero", st_bytes("{" + entry("a", "F32", "[2]", "[8,16]") + "}", std::string(16, 'x')),
                {"tensor 'a': hole in the data buffer: bytes [0, 8)"}},
        BadCase{"PastTheEnd", st_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[8,16]") + "}", k8),
                {"need 16 bytes of data but only 8", "truncated"}},
        BadCase{"TrailingBytes", st_bytes("{" + kF32x2 + "}", std::string(9, 'x')), {"1 trailing bytes"}},
        BadCase{"TrailingBytesNoTensors", st_bytes("{}", "x"), {"cover 0 bytes of data but 1 follow", "trailing"}},
        BadCase{"ShapeOverflow", st_bytes("{" + entry("w", "F32", "[4294967296,4294967296,4]", "[0,8]") + "}", k8),
                {"tensor 'w': shape [4294967296, 4294967296, 4] has more elements than fit in 64 bits"}},
        BadCase{"BytesOverflow", st_bytes("{" + entry("w", "F64", "[4611686018427387904]", "[0,8]") + "}", k8),
                {"tensor 'w': shape [4611686018427387904] needs more bytes than fit in 64 bits"}},
        BadCase{"ZeroDimStillBoundsStrides",
                st_bytes("{" + entry("w", "F32", "[0,4294967296,4294967296]", "[0,0]") + "}"), {"more elements than fit"}},
        // -- names and metadata
        BadCase{"DuplicateTensor", st_bytes("{" + kF32x2 + "," + kF32x2 + "}", k8), {"duplicate key 'w' in the header"}},
        BadCase{"DuplicateMetadataSection", st_bytes(R"({"__metadata__":{},"__metadata__":{}})"),
                {"duplicate key '__metadata__' in the header"}},
        BadCase{"DuplicateMetadataKey", st_bytes(R"({"__metadata__":{"a":"1","a":"2"}})"),
                {"duplicate key 'a' in __metadata__"}},
        BadCase{"MetadataNumber", st_bytes(R"({"__metadata__":{"a":1}})"),
                {"__metadata__ value for key 'a' is a number, not a string"}},
        BadCase{"MetadataNested", st_bytes(R"({"__metadata__":{"a":{"b":"c"}}})"),
                {"__metadata__ value for key 'a' is an object, not a string"}},
        BadCase{"MetadataArray", st_bytes(R"({"__metadata__":["a"]})"), {"__metadata__ is an array, not an object"}},
        BadCase{"MetadataString", st_bytes(R"({"__metadata__":"a"})"), {"__metadata__ is a string, not an object"}},
        BadCase{"ControlCharInName", st_bytes("{\"w\\u0001\":3}"), {"tensor 'w\\x01': entry is a number"}}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.label); });

TEST(SafetensorsMalformedExtra, LongNamesAreCutInMessages) {
  TempDir dir;
  const std::string name(100000, 'n');
  const std::string e = load_error(st_bytes("{\"" + name + "\":3}"), dir);
  EXPECT_TRUE(has(e, "...(100000 bytes)")) << e.substr(0, 300);
  EXPECT_LT(e.size(), 1000u);
}

TEST(SafetensorsMalformedExtra, HeaderOrderNeedNotBeDataOrder) {
  // The reference reader sorts entries by offset; so do we, and return data order.
  const std::string bytes =
      st_bytes("{" + entry("b", "F32", "[2]", "[8,16]") + "," + entry("a", "F32", "[2]", "[0,8]") + "}",
               std::string(16, '\0'));
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].first, "a");
  EXPECT_EQ(f.tensors[1].first, "b");
}

TEST(SafetensorsMalformedExtra, NullMetadataAndPaddingAreAccepted) {
  const std::string bytes = st_bytes("{\"__metadata__\":null," + kF32x2 + "}  \n\t ", k8);
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(f.at("w").shape(), (Shape{2}));
}

TEST(SafetensorsMalformedExtra, MissingFileNotAFileAndMissingTensor) {
  TempDir dir;
  std::string e = error_of([&] { load_safetensors(dir.file("nope.safetensors")); });
  EXPECT_TRUE(has(e, dir.file("nope.safetensors")) && has(e, "cannot open")) << e;
  fs::create_directory(dir.file("sub"));
  e = error_of([&] { load_safetensors(dir.file("sub")); });
  EXPECT_TRUE(has(e, "not a regular file")) << e;
  save_safetensors(dir.file("ok.safetensors"), {{"w", ones({1})}});
  const SafetensorsFile f = load_safetensors(dir.file("ok.safetensors"));
  EXPECT_TRUE(f.contains("w"));
  EXPECT_FALSE(f.contains("v"));
  e = error_of([&] { f.at("v"); });
  EXPECT_TRUE(has(e, dir.file("ok.safetensors")) && has(e, "no tensor named 'v'")) << e;
}

TEST(SafetensorsMalformedExtra, EveryTruncationOfAValidFileIsRefused) {
  const std::string good = serialize_safetensors(mixed_tensors(), {{"k", "v"}});
  for (size_t len = 0; len < good.size(); ++len) {
    const std::string e = error_of([&] {
      parse_safetensors(reinterpret_cast<const uint8_t*>(good.data()), len, "cut");
    });
    ASSERT_TRUE(has(e, "safetensors file 'cut'")) << "length " << len << ": " << e;
  }
}

TEST(SafetensorsMalformedExtra, CommittedBadFilesAreAllRefused) {
  const fs::path dir = fs::path(OFA_TEST_DATA_DIR) / "safetensors_bad";
  int n = 0;
  for (const auto& de : fs::directory_iterator(dir)) {
    if (de.path().extension() != ".safetensors") continue;  // the generator script lives there too
    const std::string path = de.path().string();
    const std::string e = error_of([&] { load_safetensors(path); });
    EXPECT_TRUE(has(e, "safetensors file '" + path + "': ")) << path << ": " << e;
    ++n;
  }
  EXPECT_GE(n, 10);
}

// ------------------------------------------------------------ atomic writes

TEST(SafetensorsAtomic, OverwriteReplacesTheFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  save_safetensors(path, {{"w", ones({3})}});
  save_safetensors(path, {{"v", zeros({2}, DType::F64)}}, {{"step", "2"}});
  const SafetensorsFile f = load_safetensors(path);
  EXPECT_FALSE(f.contains("w"));
  EXPECT_EQ(f.metadata.at("step"), "2");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ck.safetensors"});
}

TEST(SafetensorsAtomic, MissingDirectoryFailsCleanly) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/ck.safetensors");
  const std::string e = error_of([&] { save_safetensors(path, {{"w", ones({1})}}); });
  EXPECT_TRUE(has(e, path) && has(e, "cannot create") && has(e, "No such file or directory")) << e;
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsAtomic, FailureMidWriteKeepsThePreviousFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  save_safetensors(path, {{"w", ones({3})}});
  const std::string before = read_all(path);
  // A file-size limit makes write() fail with EFBIG part way through the data
  // (works as root too, unlike an unwritable directory).
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  const std::string e = error_of([&] { save_safetensors(path, {{"big", zeros({100000})}}); });
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(has(e, path) && has(e, "cannot write")) << e;
  EXPECT_EQ(read_all(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ck.safetensors"});
}

TEST(SafetensorsAtomic, FailedRenameRemovesTheTemporary) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  fs::create_directory(path);  // rename() cannot replace a non-empty directory with a file
  write_all(path + "/keep", "x");
  const std::string e = error_of([&] { save_safetensors(path, {{"w", ones({3})}}); });
  EXPECT_TRUE(has(e, "cannot rename") && has(e, path)) << e;
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ck.safetensors"});
  EXPECT_EQ(read_all(path + "/keep"), "x");
}

TEST(SafetensorsAtomic, RelativePathInTheCurrentDirectory) {
  TempDir dir;
  const fs::path old = fs::current_path();
  fs::current_path(dir.file(""));
  std::string e = error_of([&] { save_safetensors("rel.safetensors", {{"w", ones({2})}}); });
  const bool ok = fs::exists("rel.safetensors");
  fs::current_path(old);
  EXPECT_EQ(e, "<no error>");
  EXPECT_TRUE(ok);
}
