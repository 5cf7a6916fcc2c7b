// Module checkpoints: save/load round trip of real layers, the reference's
// older key names, and strict loading that lists every problem in one error
// naming the file and loads nothing.
#include <stdlib.h>

#include <filesystem>

#include "engine/random.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::nn;
using namespace ofa::test;
namespace fs = std::filesystem;

namespace {


struct Block : Module {
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  Block(int64_t c, Generator* g) {
    conv = register_module("conv", std::make_shared<Conv2d>(c, c, 3, 1, c, false, g));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(c));
  }
};

// blocks.{0,1}.conv.weight, blocks.{0,1}.bn.*, classifier.{weight,bias}
struct Net : Module {
  std::shared_ptr<Module> blocks;
  std::shared_ptr<Linear> classifier;
  explicit Net(uint64_t seed) {
    Generator g(seed);
    blocks = register_module("blocks", std::make_shared<Module>());
    blocks->register_module("0", std::make_shared<Block>(4, &g));
    blocks->register_module("1", std::make_shared<Block>(4, &g));
    classifier = register_module("classifier", std::make_shared<Linear>(4, 3, true, &g));
    // Non-default values everywhere, buffers included.
    NoGradGuard ng;
    uint64_t s = seed * 100;
    for (auto& [k, t] : state_dict()) {
      if (t.dtype() == DType::I64)
        t.fill_(static_cast<double>(seed + 5));
      else
        t.copy_(randn_t(t.shape(), s++, t.dtype()));
    }
  }
};

::testing::AssertionResult same_state(const Module& a, const Module& b) {
  const NamedTensors sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size()) return ::testing::AssertionFailure() << "state sizes differ";
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first != sb[i].first) return ::testing::AssertionFailure() << sa[i].first << " vs " << sb[i].first;
    if (sa[i].second.dtype() != sb[i].second.dtype()) return ::testing::AssertionFailure() << sa[i].first << ": dtype";
    auto r = all_close(sa[i].second.to(DType::F64), sb[i].second.to(DType::F64), 0, 0);
    if (!r) return r << " (" << sa[i].first << ")";
  }
  return ::testing::AssertionSuccess();
}

// The file's tensors under other names (the reference's spelling).
NamedTensorList renamed(const Module& m, const std::string& from, const std::string& to) {
  NamedTensorList out;
  for (const auto& [k, t] : m.state_dict()) {
    std::string key = k;
    const size_t pos = key.find(from);
    if (pos != std::string::npos) key.replace(pos, from.size(), to);
    out.emplace_back(key, t);
  }
  return out;
}

}  // namespace

TEST(Checkpoint, SaveLoadRoundTripKeepsParameterHandles) {
  TempDir dir;
  const Net src(1);
  Net dst(2);
  ASSERT_FALSE(same_state(src, dst));
  const Tensor w_handle = dst.classifier->weight;
  const void* w_data = w_handle.raw_data();
  save_module_state(dir.file("net.safetensors"), src, {{"epoch", "3"}});
  const SafetensorsFile f = load_safetensors(dir.file("net.safetensors"));
  EXPECT_EQ(f.metadata.at("epoch"), "3");
  std::vector<std::string> names;
  for (const auto& [k, t] : f.tensors) names.push_back(k);
  std::vector<std::string> want;
  for (const auto& [k, t] : src.state_dict()) want.push_back(k);
  EXPECT_EQ(names, want);  // state_dict order
  const LoadResult r = load_module_state(dst, f);
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  EXPECT_TRUE(same_state(src, dst));
  EXPECT_EQ(dst.classifier->weight.raw_data(), w_data);  // copied in place
  EXPECT_TRUE(dst.classifier->weight.requires_grad());
  EXPECT_EQ(dst.state_dict()[5].first, "blocks.0.bn.num_batches_tracked");
  EXPECT_EQ(dst.state_dict()[5].second.item(), 6);
}

TEST(Checkpoint, LoadFromPath) {
  TempDir dir;
  const Net src(3);
  Net dst(4);
  save_module_state(dir.file("net.safetensors"), src);
  load_module_state(dst, dir.file("net.safetensors"));
  EXPECT_TRUE(same_state(src, dst));
  const std::string e = error_of([&] { load_module_state(dst, dir.file("missing.safetensors")); });
  EXPECT_TRUE(has(e, dir.file("missing.safetensors")) && has(e, "cannot open")) << e;
}

TEST(Checkpoint, MapReferenceKey) {
  EXPECT_EQ(map_reference_key("blocks.3.mobile_inverted_conv.depth_conv.conv.weight"), "blocks.3.conv.depth_conv.conv.weight");
  EXPECT_EQ(map_reference_key("blocks.3.conv.weight"), "blocks.3.conv.weight");
  EXPECT_EQ(map_reference_key("mobile_inverted_conv.weight"), "mobile_inverted_conv.weight");  // as the reference: dots on both sides
  EXPECT_EQ(map_reference_key("a.mobile_inverted_conv.b.mobile_inverted_conv.c"), "a.conv.b.conv.c");
  EXPECT_EQ(map_reference_key("a.mobile_inverted_conv.mobile_inverted_conv.c"), "a.conv.mobile_inverted_conv.c");  // str.replace
}

TEST(Checkpoint, LoadsTheReferencesOlderNames) {
  TempDir dir;
  const Net src(5);
  Net dst(6);
  const NamedTensorList old = renamed(src, ".conv.", ".mobile_inverted_conv.");
  ASSERT_EQ(old[0].first, "blocks.0.mobile_inverted_conv.weight");
  save_safetensors(dir.file("old.safetensors"), old);
  load_module_state(dst, load_safetensors(dir.file("old.safetensors")));
  EXPECT_TRUE(same_state(src, dst));
  // Without the mapping the old names are unexpected and the new ones missing.
  CheckpointLoadOptions raw;
  raw.rename = nullptr;
  const std::string e = error_of([&] { load_module_state(dst, load_safetensors(dir.file("old.safetensors")), raw); });
  EXPECT_TRUE(has(e, "unexpected key 'blocks.0.mobile_inverted_conv.weight'")) << e;
  EXPECT_TRUE(has(e, "missing key 'blocks.0.conv.weight'")) << e;
}

TEST(Checkpoint, StrictErrorListsEveryProblemNamesTheFileAndLoadsNothing) {
  TempDir dir;
  const Net src(7);
  NamedTensorList ts;
  for (const auto& [k, t] : src.state_dict()) {
    if (k == "blocks.1.bn.running_var") continue;  // missing
    if (k == "classifier.weight") {
      ts.emplace_back(k, zeros({3, 5}));  // wrong shape
    } else if (k == "classifier.bias") {
      ts.emplace_back(k, zeros({3}, DType::F64));  // wrong dtype
    } else if (k == "blocks.1.conv.weight") {
      ts.emplace_back("blocks.1.mobile_inverted_conv.weight", zeros({4, 1, 2, 2}));  // mapped name, wrong shape
    } else {
      ts.emplace_back(k, t);
    }
  }
  ts.emplace_back("extra.weight", zeros({1}));                      // unexpected
  ts.emplace_back("blocks.0.mobile_inverted_conv.bias", zeros({1}));  // unexpected after mapping
  save_safetensors(dir.file("bad.safetensors"), ts);
  Net dst(8);
  const Net untouched(8);
  const std::string e = error_of([&] { load_module_state(dst, load_safetensors(dir.file("bad.safetensors"))); });
  EXPECT_TRUE(has(e, "load_module_state: '" + dir.file("bad.safetensors") + "': 6 problem(s), nothing was loaded")) << e;
  EXPECT_TRUE(has(e, "missing key 'blocks.1.bn.running_var'")) << e;
  EXPECT_TRUE(has(e, "unexpected key 'extra.weight'")) << e;
  EXPECT_TRUE(has(e, "unexpected key 'blocks.0.conv.bias' (file key 'blocks.0.mobile_inverted_conv.bias')")) << e;
  EXPECT_TRUE(has(e, "size mismatch for 'classifier.weight': the file has shape [3, 5], the module has [3, 4]")) << e;
  EXPECT_TRUE(has(e, "size mismatch for 'blocks.1.conv.weight' (file key 'blocks.1.mobile_inverted_conv.weight')")) << e;
  EXPECT_TRUE(has(e, "dtype mismatch for 'classifier.bias': the file has float64, the module has float32")) << e;
  EXPECT_TRUE(same_state(dst, untouched));
}

TEST(Checkpoint, NonStrictReportsMissingAndUnexpectedButStillRefusesShapes) {
  TempDir dir;
  const Net src(9);
  NamedTensorList ts = {{"classifier.weight", src.classifier->weight}, {"head.extra", zeros({2})}};
  save_safetensors(dir.file("part.safetensors"), ts);
  Net dst(10);
  CheckpointLoadOptions loose;
  loose.strict = false;
  const LoadResult r = load_module_state(dst, load_safetensors(dir.file("part.safetensors")), loose);
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"head.extra"});
  EXPECT_EQ(r.missing_keys.size(), dst.state_dict().size() - 1);
  EXPECT_TRUE(all_close(dst.classifier->weight, src.classifier->weight.detach(), 0, 0));
  save_safetensors(dir.file("shape.safetensors"), {{"classifier.bias", zeros({7})}});
  const std::string e =
      error_of([&] { load_module_state(dst, load_safetensors(dir.file("shape.safetensors")), loose); });
  EXPECT_TRUE(has(e, "size mismatch for 'classifier.bias'") && has(e, dir.file("shape.safetensors"))) << e;
}

TEST(Checkpoint, TwoFileKeysMappingToOneNameAreRefused) {
  TempDir dir;
  const Net src(11);
  NamedTensorList ts = renamed(src, "zzz", "zzz");
  ts.emplace_back("blocks.0.mobile_inverted_conv.weight", src.state_dict()[0].second);
  save_safetensors(dir.file("dup.safetensors"), ts);
  Net dst(12);
  const std::string e = error_of([&] { load_module_state(dst, load_safetensors(dir.file("dup.safetensors"))); });
  EXPECT_TRUE(has(e, "file keys 'blocks.0.conv.weight' and 'blocks.0.mobile_inverted_conv.weight' both map to "
                     "'blocks.0.conv.weight'"))
      << e;
  EXPECT_TRUE(has(e, dir.file("dup.safetensors"))) << e;
}
