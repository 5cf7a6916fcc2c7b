// Module: naming and order (PyTorch's state_dict contract), load_state_dict
// errors, train/eval recursion, zero_grad.
#include <algorithm>

#include "nn/module.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::nn;
using namespace ofa::test;

namespace {

// Small stand-ins with the structure of the real layers.
struct Conv : Module {
  Tensor weight;
  explicit Conv(uint64_t seed) { weight = register_parameter("weight", randn_t({3, 2, 1, 1}, seed)); }
};
struct BN : Module {
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  explicit BN(uint64_t seed) {
    weight = register_parameter("weight", randn_t({3}, seed));
    bias = register_parameter("bias", randn_t({3}, seed + 1));
    running_mean = register_buffer("running_mean", randn_t({3}, seed + 2));
    running_var = register_buffer("running_var", uniform_t({3}, seed + 3, 0.5, 2));
    num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0, DType::I64));
  }
};
struct ConvBN : Module {
  std::shared_ptr<Conv> conv;
  std::shared_ptr<BN> bn;
  explicit ConvBN(uint64_t seed) {
    conv = register_module("conv", std::make_shared<Conv>(seed));
    bn = register_module("bn", std::make_shared<BN>(seed + 10));
  }
};
struct Block : Module {
  std::shared_ptr<ConvBN> depth_conv;
  Tensor scale, count;
  explicit Block(uint64_t seed) {
    depth_conv = register_module("depth_conv", std::make_shared<ConvBN>(seed));
    // Registered after a child: PyTorch still lists own tensors first.
    scale = register_parameter("scale", randn_t({1}, seed + 20));
    count = register_buffer("count", zeros({1}, DType::F64));
  }
};
struct Blocks : Module {  // a ModuleList: children named "0", "1", ...
  explicit Blocks(uint64_t seed) {
    for (int i = 0; i < 2; ++i) register_module(std::to_string(i), std::make_shared<Block>(seed + 100 * i));
  }
};
struct Linear : Module {
  Tensor weight, bias;
  explicit Linear(uint64_t seed) {
    weight = register_parameter("weight", randn_t({2, 3}, seed));
    bias = register_parameter("bias", randn_t({2}, seed + 1));
  }
};
struct Net : Module {
  std::shared_ptr<Blocks> blocks;
  std::shared_ptr<Linear> classifier;
  Tensor temperature;
  explicit Net(uint64_t seed = 1) {
    blocks = register_module("blocks", std::make_shared<Blocks>(seed));
    classifier = register_module("classifier", std::make_shared<Linear>(seed + 1000));
    temperature = register_parameter("temperature", ones({1}, DType::F64));
  }
};

std::vector<std::string> keys(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& kv : nt) out.push_back(kv.first);
  return out;
}

// Printed by PyTorch 1.13 for the same structure (nn.ModuleList, Conv2d,
// BatchNorm2d, Linear, a Parameter and a buffer registered after a child).
const std::vector<std::string> kTorchStateDictKeys = {
    "temperature",
    "blocks.0.scale",
    "blocks.0.count",
    "blocks.0.depth_conv.conv.weight",
    "blocks.0.depth_conv.bn.weight",
    "blocks.0.depth_conv.bn.bias",
    "blocks.0.depth_conv.bn.running_mean",
    "blocks.0.depth_conv.bn.running_var",
    "blocks.0.depth_conv.bn.num_batches_tracked",
    "blocks.1.scale",
    "blocks.1.count",
    "blocks.1.depth_conv.conv.weight",
    "blocks.1.depth_conv.bn.weight",
    "blocks.1.depth_conv.bn.bias",
    "blocks.1.depth_conv.bn.running_mean",
    "blocks.1.depth_conv.bn.running_var",
    "blocks.1.depth_conv.bn.num_batches_tracked",
    "classifier.weight",
    "classifier.bias",
};
const std::vector<std::string> kTorchParameterNames = {
    "temperature",
    "blocks.0.scale",
    "blocks.0.depth_conv.conv.weight",
    "blocks.0.depth_conv.bn.weight",
    "blocks.0.depth_conv.bn.bias",
    "blocks.1.scale",
    "blocks.1.depth_conv.conv.weight",
    "blocks.1.depth_conv.bn.weight",
    "blocks.1.depth_conv.bn.bias",
    "classifier.weight",
    "classifier.bias",
};

}  // namespace

TEST(Module, StateDictKeysAndOrderMatchPyTorch) {
  Net net;
  EXPECT_EQ(keys(net.state_dict()), kTorchStateDictKeys);
}

TEST(Module, NamedParametersOrderMatchesPyTorch) {
  Net net;
  EXPECT_EQ(keys(net.named_parameters()), kTorchParameterNames);
  for (const auto& [n, p] : net.named_parameters()) EXPECT_TRUE(p.requires_grad()) << n;
  EXPECT_EQ(net.parameters().size(), kTorchParameterNames.size());
}

TEST(Module, NamedBuffersAreTheNonParameterEntries) {
  Net net;
  std::vector<std::string> want;
  for (const auto& k : kTorchStateDictKeys)
    if (std::find(kTorchParameterNames.begin(), kTorchParameterNames.end(), k) == kTorchParameterNames.end())
      want.push_back(k);
  EXPECT_EQ(keys(net.named_buffers()), want);
  for (const auto& [n, b] : net.named_buffers()) EXPECT_FALSE(b.requires_grad()) << n;
}

TEST(Module, NamedParametersAreTheMembersThemselves) {
  Net net;
  auto np = net.named_parameters();
  auto block1 = std::dynamic_pointer_cast<Block>(net.blocks->children()[1]);
  ASSERT_NE(block1, nullptr);
  auto it = std::find_if(np.begin(), np.end(), [](const auto& kv) { return kv.first == "blocks.1.depth_conv.bn.bias"; });
  ASSERT_NE(it, np.end());
  EXPECT_EQ(it->second.impl(), block1->depth_conv->bn->bias.impl());
}

TEST(Module, StateDictIsDetachedViewOfLiveStorage) {
  Net net;
  auto sd = net.state_dict();
  const Tensor& w = sd[kTorchStateDictKeys.size() - 2].second;  // classifier.weight
  EXPECT_FALSE(w.requires_grad());
  EXPECT_EQ(w.raw_data(), net.classifier->weight.raw_data());
}

TEST(Module, ChildrenAndNamedModulesPreOrder) {
  Net net;
  auto ch = net.named_children();
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].first, "blocks");
  EXPECT_EQ(ch[1].first, "classifier");
  EXPECT_EQ(net.children()[1].get(), net.classifier.get());
  std::vector<std::string> names;
  for (const auto& kv : net.named_modules()) names.push_back(kv.first);
  std::vector<std::string> want = {"",
                                   "blocks",
                                   "blocks.0",
                                   "blocks.0.depth_conv",
                                   "blocks.0.depth_conv.conv",
                                   "blocks.0.depth_conv.bn",
                                   "blocks.1",
                                   "blocks.1.depth_conv",
                                   "blocks.1.depth_conv.conv",
                                   "blocks.1.depth_conv.bn",
                                   "classifier"};
  EXPECT_EQ(names, want);
}

TEST(Module, SharedParameterListedOnceButSavedUnderEveryName) {
  struct Tied : Module {
    Tied() {
      Tensor w = randn_t({2}, 5);
      register_parameter("a", w);
      register_parameter("b", w);
    }
  } m;
  EXPECT_EQ(keys(m.named_parameters()), (std::vector<std::string>{"a"}));
  EXPECT_EQ(keys(m.state_dict()), (std::vector<std::string>{"a", "b"}));
}

TEST(Module, LoadStateDictCopiesInPlace) {
  Net src(1), dst(7);
  Tensor handle = dst.blocks->children()[0]->named_parameters()[0].second;  // blocks.0.scale
  const void* before = handle.raw_data();
  {
    NoGradGuard ng;
    src.blocks->children()[0]->named_buffers()[0].second.fill_(3.0);  // blocks.0.count
  }
  auto res = dst.load_state_dict(src.state_dict());
  EXPECT_TRUE(res.missing_keys.empty());
  EXPECT_TRUE(res.unexpected_keys.empty());
  auto a = src.state_dict(), b = dst.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].second.to_vector<double>(), b[i].second.to_vector<double>()) << a[i].first;
    EXPECT_NE(a[i].second.raw_data(), b[i].second.raw_data()) << a[i].first;
  }
  EXPECT_EQ(handle.raw_data(), before);
  EXPECT_TRUE(handle.requires_grad());
  EXPECT_EQ(handle.to_vector<double>(), src.blocks->children()[0]->named_parameters()[0].second.to_vector<double>());
}

TEST(Module, LoadStateDictConvertsDtype) {
  Net src(1), dst(2);
  NamedTensors sd = src.state_dict();
  for (auto& kv : sd)
    if (is_floating(kv.second.dtype())) kv.second = kv.second.to(DType::F32);
  dst.load_state_dict(sd);
  EXPECT_EQ(dst.classifier->weight.dtype(), DType::F64);
  EXPECT_TRUE(all_close(dst.classifier->weight, src.classifier->weight.to(DType::F32).to(DType::F64), 0, 0));
}

TEST(Module, StrictLoadListsEveryProblemAndLoadsNothing) {
  Net src(1), dst(2);
  NamedTensors sd;
  for (const auto& kv : src.state_dict()) {
    if (kv.first == "blocks.0.scale" || kv.first == "blocks.1.depth_conv.bn.running_var") continue;  // missing
    if (kv.first == "classifier.weight") {
      sd.emplace_back(kv.first, randn_t({2, 4}, 9));  // wrong shape
      continue;
    }
    sd.push_back(kv);
  }
  sd.emplace_back("blocks.2.scale", randn_t({1}, 3));  // unexpected
  sd.emplace_back("classifier.bias_typo", randn_t({2}, 4));  // unexpected
  auto before = dst.classifier->bias.to_vector<double>();
  std::string msg = error_of([&] { dst.load_state_dict(sd); });
  EXPECT_NE(msg.find("5 problem(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing key 'blocks.0.scale'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing key 'blocks.1.depth_conv.bn.running_var'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected key 'blocks.2.scale'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected key 'classifier.bias_typo'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("size mismatch for 'classifier.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  // Atomic: the valid entries were not copied either.
  EXPECT_EQ(dst.classifier->bias.to_vector<double>(), before);
}

TEST(Module, NonStrictLoadReportsKeysAndLoadsTheRest) {
  Net src(1), dst(2);
  NamedTensors sd;
  for (const auto& kv : src.state_dict())
    if (kv.first != "temperature") sd.push_back(kv);
  sd.emplace_back("extra", randn_t({1}, 3));
  auto temp_before = dst.temperature.to_vector<double>();
  LoadResult r = dst.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"temperature"}));
  EXPECT_EQ(r.unexpected_keys, (std::vector<std::string>{"extra"}));
  EXPECT_EQ(dst.classifier->bias.to_vector<double>(), src.classifier->bias.to_vector<double>());
  EXPECT_EQ(dst.temperature.to_vector<double>(), temp_before);
}

TEST(Module, NonStrictLoadStillRejectsShapeMismatch) {
  Net src(1), dst(2);
  NamedTensors sd = src.state_dict();
  sd[0].second = randn_t({3}, 1);  // temperature is [1]
  std::string msg = error_of([&] { dst.load_state_dict(sd, false); });
  EXPECT_NE(msg.find("size mismatch for 'temperature'"), std::string::npos) << msg;
}

TEST(Module, LoadRejectsDuplicateKeys) {
  Net src(1), dst(2);
  NamedTensors sd = src.state_dict();
  sd.push_back(sd[0]);
  std::string msg = error_of([&] { dst.load_state_dict(sd); });
  EXPECT_NE(msg.find("duplicate key 'temperature'"), std::string::npos) << msg;
}

TEST(Module, TrainEvalRecursive) {
  Net net;
  auto all_modes = [&](bool want) {
    for (const auto& [n, m] : net.named_modules())
      if (m->is_training() != want) return false;
    return true;
  };
  EXPECT_TRUE(all_modes(true));
  net.eval();
  EXPECT_TRUE(all_modes(false));
  net.train();
  EXPECT_TRUE(all_modes(true));
  net.blocks->eval();  // a subtree only
  EXPECT_TRUE(net.is_training());
  EXPECT_TRUE(net.classifier->is_training());
  EXPECT_FALSE(net.blocks->children()[1]->children()[0]->is_training());
}

TEST(Module, ZeroGradZeroesExistingGradsInPlace) {
  Net net;
  Tensor x = randn_t({2, 3}, 3);
  sum(mul(net.classifier->weight, x)).backward();
  Tensor g = net.classifier->weight.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_TRUE(all_close(g, x, 0, 0));
  net.zero_grad();
  EXPECT_EQ(net.classifier->weight.grad().impl(), g.impl());  // same buffer
  EXPECT_TRUE(all_close(g, zeros({2, 3}, DType::F64), 0, 0));
  EXPECT_FALSE(net.classifier->bias.grad().defined());  // never had one: stays absent
}

TEST(Module, RegistrationErrorsNameTheProblem) {
  Module m;
  m.register_parameter("w", randn_t({2}, 1));
  EXPECT_NE(error_of([&] { m.register_parameter("w", randn_t({2}, 1)); }).find("'w' is already registered"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m.register_buffer("w", randn_t({2}, 1)); }).find("'w' is already registered"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("a.b", randn_t({2}, 1)); }).find("contains a dot"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("", randn_t({2}, 1)); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("i", arange(3)); }).find("int64"), std::string::npos);
  Tensor leaf = randn_t({2}, 1).set_requires_grad(true);
  EXPECT_NE(error_of([&] { m.register_parameter("y", mul(leaf, 2.0)); }).find("grad_fn"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_module("c", std::shared_ptr<Module>()); }).find("null module"), std::string::npos);
  EXPECT_NE(error_of([&] { m.register_parameter("u", Tensor()); }).find("undefined"), std::string::npos);
}

TEST(Module, IntBufferAllowed) {
  Module m;
  m.register_buffer("n", scalar_tensor(4, DType::I64));
  Module d;
  d.register_buffer("n", scalar_tensor(0, DType::I64));
  d.load_state_dict(m.state_dict());
  EXPECT_EQ(d.named_buffers()[0].second.item(), 4.0);
}
