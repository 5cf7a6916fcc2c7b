// Static MobileNetV3 (nn/mobilenet_v3.h): the reference's layers and net
// config, checked against tests/data/ofa_golden.txt (make_ofa_golden.py) for
// config round trips, state_dict names, logits and gradients, and net info.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/mobilenet_v3.h"
#include "ofa_golden.h"
#include "tests/support/test_util.h"

namespace ofa::test {
namespace {

using nn::json;
using nn::MobileNetV3;

json golden_config() {
  const auto& f = golden_file();
  const size_t at = f.find("active_config");
  EXPECT_NE(at, std::string::npos);
  return json::parse(f.raw[at].substr(std::string("active_config ").size()));
}

TEST(MobileNetV3Layers, MakeDivisibleAsTheReference) {
  EXPECT_EQ(nn::make_divisible(16), 16);
  EXPECT_EQ(nn::make_divisible(960 * 0.75), 720);
  EXPECT_EQ(nn::make_divisible(1280 * 1.2), 1536);
  EXPECT_EQ(nn::make_divisible(24 * 0.35), 8);
  EXPECT_EQ(nn::make_divisible(4), 8);
  EXPECT_EQ(nn::make_divisible(10), 16);  // 8 < 0.9 * 10: bumped
  EXPECT_EQ(nn::make_divisible(36), 40);  // int(36 + 4) // 8 * 8
  EXPECT_EQ(nn::make_divisible(44), 48);
  EXPECT_EQ(nn::round_make_divisible(16, 6), 96);
  EXPECT_EQ(nn::round_make_divisible(24, 4), 96);
  EXPECT_EQ(nn::round_make_divisible(40, 3), 120);
  EXPECT_EQ(nn::round_make_divisible(112, 6), 672);
  EXPECT_EQ(nn::min_divisible_value(16, 3), 2);
  EXPECT_EQ(nn::min_divisible_value(16, 32), 16);
}

TEST(MobileNetV3Layers, SEModuleNamesAndArithmetic) {
  nn::SEModule se(40);
  EXPECT_EQ(se.mid, 16);
  std::vector<std::string> keys;
  for (auto& [k, t] : se.state_dict()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"fc.reduce.weight", "fc.reduce.bias", "fc.expand.weight", "fc.expand.bias"}));
  golden_init(se);
  Tensor x = golden_uniform_pm1("se_x", {2, 40, 3, 5});
  Tensor y = se.forward(x);
  // By hand in double: s = hsigmoid(We relu(Wr mean(x) + br) + be).
  const auto xv = x.to(DType::F64).contiguous().to_vector<double>();
  const auto wr = se.fc->reduce->weight.to(DType::F64).contiguous().to_vector<double>();
  const auto br = se.fc->reduce->bias.to(DType::F64).to_vector<double>();
  const auto we = se.fc->expand->weight.to(DType::F64).contiguous().to_vector<double>();
  const auto be = se.fc->expand->bias.to(DType::F64).to_vector<double>();
  std::vector<double> ref(xv.size());
  for (int n = 0; n < 2; ++n) {
    std::vector<double> m(40, 0.0), h(16), s(40);
    for (int c = 0; c < 40; ++c) {
      for (int p = 0; p < 15; ++p) m[c] += xv[(n * 40 + c) * 15 + p];
      m[c] /= 15;
    }
    for (int j = 0; j < 16; ++j) {
      double a = br[j];
      for (int c = 0; c < 40; ++c) a += wr[j * 40 + c] * m[c];
      h[j] = std::max(a, 0.0);
    }
    for (int c = 0; c < 40; ++c) {
      double a = be[c];
      for (int j = 0; j < 16; ++j) a += we[c * 16 + j] * h[j];
      s[c] = std::min(std::max(a + 3.0, 0.0), 6.0) / 6.0;
      for (int p = 0; p < 15; ++p) ref[(n * 40 + c) * 15 + p] = xv[(n * 40 + c) * 15 + p] * s[c];
    }
  }
  EXPECT_TRUE(all_close(y, ref, 1e-6, 1e-5));
}

TEST(MobileNetV3Layers, MBConvWithoutExpansionHasNoInvertedBottleneck) {
  nn::MBConvLayer mb(16, 16, 3, 1, 1.0, -1, "relu", false);
  EXPECT_EQ(mb.inverted_bottleneck, nullptr);
  std::vector<std::string> keys;
  for (auto& [k, t] : mb.state_dict()) keys.push_back(k);
  EXPECT_EQ(keys.front(), "depth_conv.conv.weight");
  EXPECT_EQ(mb.depth_conv->conv->weight.shape(), (Shape{16, 1, 3, 3}));
  EXPECT_EQ(mb.module_str(), "3x3_MBConv1_RELU_O16_BN");
  nn::MBConvLayer se(24, 40, 5, 2, 3.0, 72, "h_swish", true);
  EXPECT_EQ(se.module_str(), "SE_5x5_MBConv3_H_SWISH_O40_BN");
  EXPECT_EQ(se.depth_conv->se->fc->reduce->weight.shape(), (Shape{24, 72, 1, 1}));
}

TEST(MobileNetV3Layers, ResidualBlockAddsTheInput) {
  auto mb = std::make_shared<nn::MBConvLayer>(8, 8, 3, 1, 3.0, -1, "relu", false);
  nn::ResidualBlock with(mb, true, 8);
  nn::ResidualBlock without(mb, false, 0);
  with.eval();
  without.eval();
  Tensor x = golden_uniform_pm1("rb_x", {2, 8, 5, 5});
  EXPECT_TRUE(all_close(with.forward(x), add(without.forward(x), x), 1e-6, 1e-6));
  EXPECT_EQ(with.module_str(), "(3x3_MBConv3_RELU_O8_BN, Identity)");
  EXPECT_TRUE(with.config()["shortcut"].is_object());
  EXPECT_TRUE(without.config()["shortcut"].is_null());
}

TEST(MobileNetV3Layers, LinearLayerDropsOutOnlyInTraining) {
  nn::LinearLayer l(32, 5, true, 0.5);
  Tensor x = golden_uniform_pm1("lin_x", {4, 32});
  l.eval();
  EXPECT_TRUE(all_close(l.forward(x), linear(x, l.linear->weight, l.linear->bias), 0, 0));
  l.train();
  Generator g(3);
  l.dropout_generator = &g;
  EXPECT_FALSE(all_close(l.forward(x), linear(x, l.linear->weight, l.linear->bias), 1e-3, 1e-3));
  EXPECT_EQ(l.module_str(), "32x5_Linear");
}

// ---- net config
TEST(MobileNetV3Net, ConfigRoundTrip) {
  const json cfg = golden_config();
  auto net = MobileNetV3::build_from_config(cfg);
  json expect = cfg;
  for (auto& b : expect["blocks"]) b["conv"]["groups"] = nullptr;  // MBConvLayer.config adds groups: None
  EXPECT_EQ(net->config(), expect) << net->config().dump();
  auto net2 = MobileNetV3::build_from_config(net->config());
  EXPECT_EQ(net2->config(), net->config());
  // Older configs: "mobile_inverted_conv" and "MBInvertedConvLayer".
  json old = cfg;
  for (auto& b : old["blocks"]) {
    b["mobile_inverted_conv"] = b["conv"];
    b["mobile_inverted_conv"]["name"] = "MBInvertedConvLayer";
    b.erase("conv");
  }
  EXPECT_EQ(MobileNetV3::build_from_config(old)->config(), expect);
}

TEST(MobileNetV3Net, StateDictKeysEqualTheReference) {
  auto net = MobileNetV3::build_from_config(golden_config());
  const auto& f = golden_file();
  const size_t at = f.find("keys_subnet");
  ASSERT_NE(at, std::string::npos);
  const size_t n = std::stoul(f.lines[at][1]);
  std::vector<std::string> keys;
  for (auto& [k, t] : net->state_dict()) keys.push_back(k);
  EXPECT_EQ(keys, std::vector<std::string>(f.raw.begin() + at + 1, f.raw.begin() + at + 1 + n));
  for (const char* k : {"first_conv.conv.weight", "first_conv.bn.running_var", "first_conv.bn.num_batches_tracked",
                        "blocks.1.conv.inverted_bottleneck.conv.weight", "blocks.1.conv.depth_conv.bn.weight",
                        "classifier.linear.weight"})
    EXPECT_TRUE(std::find(keys.begin(), keys.end(), k) != keys.end()) << k;
}

TEST(MobileNetV3Net, ModuleStr) {
  auto net = MobileNetV3::build_from_config(golden_config());
  const std::string s = net->module_str();
  EXPECT_EQ(s.substr(0, s.find('\n')), "3x3_Conv_O16_H_SWISH_BN");
  EXPECT_TRUE(has(s, "\n(3x3_MBConv1_RELU_O16_BN, Identity)\n"));
  EXPECT_TRUE(has(s, "\n1x1_Conv_O960_H_SWISH_BN\nMyGlobalAvgPool2d(keep_dim=True)\n1x1_Conv_O1280_H_SWISH\n1280x10_Linear"));
}

TEST(MobileNetV3Net, BnParams) {
  json cfg = golden_config();
  cfg["bn"] = {{"momentum", 0.05}, {"eps", 1e-3}, {"ws_eps", nullptr}};
  auto net = MobileNetV3::build_from_config(cfg);
  EXPECT_EQ(net->get_bn_param()["momentum"].get<double>(), 0.05);
  EXPECT_EQ(net->blocks[3]->config()["name"], "ResidualBlock");
  auto* mb = dynamic_cast<nn::MBConvLayer*>(net->blocks[3]->conv.get());
  ASSERT_NE(mb, nullptr);
  EXPECT_EQ(mb->point_linear->bn->eps, 1e-3);
}

TEST(MobileNetV3Net, BadConfigsAreRefusedByName) {
  json cfg = golden_config();
  json c1 = cfg;
  c1["bn"]["ws_eps"] = 1e-5;
  EXPECT_TRUE(has(error_of([&] { MobileNetV3::build_from_config(c1); }), "weight standardisation"));
  json c2 = cfg;
  c2["blocks"][2]["conv"]["name"] = "ResNetBottleneckBlock";
  EXPECT_TRUE(has(error_of([&] { MobileNetV3::build_from_config(c2); }), "'ResNetBottleneckBlock', not MBConvLayer"));
  json c3 = cfg;
  c3["blocks"][2]["conv"]["act_func"] = "gelu";
  EXPECT_TRUE(has(error_of([&] { MobileNetV3::build_from_config(c3); }), "unsupported activation 'gelu'"));
  json c4 = cfg;
  c4["first_conv"]["ops_order"] = "bn_act_weight";
  EXPECT_TRUE(has(error_of([&] { MobileNetV3::build_from_config(c4); }), "ops_order"));
}

// ---- numbers against PyTorch
class MobileNetV3Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(MobileNetV3Golden, LogitsAndGradients) {
  const std::string mode = GetParam();
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("static_case"); i != std::string::npos; i = f.find("static_case", i + 1))
    if (f.lines[i][1] == mode) at = i;
  ASSERT_NE(at, std::string::npos);
  const int64_t res = std::stoll(f.lines[at][2]), batch = std::stoll(f.lines[at][3]);
  const GoldenCase gc = parse_case(f, at);
  auto net = MobileNetV3::build_from_config(golden_config());
  golden_init(*net);
  net->train(mode == "train");
  Tensor y = net->forward(golden_input(batch, res));
  EXPECT_TRUE(logits_close(y, gc.logits, 1e-4));
  if (mode != "train") return;
  sum(mul(y, golden_logit_weights(batch, y.size(1)))).backward();
  int64_t compared = 0;
  EXPECT_TRUE(grads_close(net->named_parameters(), gc, 1e-3, &compared));
  EXPECT_EQ(compared, static_cast<int64_t>(net->named_parameters().size()));
}

INSTANTIATE_TEST_SUITE_P(Modes, MobileNetV3Golden, ::testing::Values("train", "eval"));

TEST(MobileNetV3Net, NetInfoCountsAsTheReference) {
  json cfg = golden_config();
  cfg["classifier"]["out_features"] = 1000;  // the golden counts are for the 1000-class supernet
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("netinfo"); i != std::string::npos; i = f.find("netinfo", i + 1))
    if (f.lines[i][1] == "mixed7") at = i;
  ASSERT_NE(at, std::string::npos);
  const auto& t = f.lines[at];
  EXPECT_EQ(nn::net_info_from_config(cfg, 224).params, std::stoll(t[2]));
  EXPECT_EQ(nn::net_info_from_config(cfg, 224).macs, std::stoll(t[3]));
  EXPECT_EQ(nn::net_info_from_config(cfg, 128).macs, std::stoll(t[4]));
  EXPECT_EQ(nn::net_info_from_config(cfg, 160).macs, std::stoll(t[5]));
  auto net = MobileNetV3::build_from_config(cfg);
  EXPECT_EQ(net->count_parameters(), std::stoll(t[2]));
  EXPECT_EQ(net->net_info(224).macs, std::stoll(t[3]));
}

}  // namespace
}  // namespace ofa::test
