// OFA-MobileNetV3 supernet against tests/data/ofa_golden.txt (written by
// tests/data/make_ofa_golden.py from the reference's semantics in PyTorch):
// state_dict names, subnet sampling from Python's random, logits and gradient
// checksums in training mode, extraction, net info, re-organisation.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ofa/ofa_mbv3.h"
#include "ofa_golden.h"
#include "tests/support/test_util.h"

namespace ofa::test {
namespace {

using nn::OFAMobileNetV3;

constexpr int64_t kClasses = 10;

std::shared_ptr<OFAMobileNetV3> golden_net() {
  auto net = std::make_shared<OFAMobileNetV3>(kClasses, 0.1, 1e-5, 0.0);
  golden_init(*net);
  return net;
}

std::vector<std::string> keys_after(const std::string& head) {
  const auto& f = golden_file();
  const size_t at = f.find(head);
  EXPECT_NE(at, std::string::npos) << head << " missing from ofa_golden.txt";
  if (at == std::string::npos) return {};
  const size_t n = std::stoul(f.lines[at][1]);
  return std::vector<std::string>(f.raw.begin() + at + 1, f.raw.begin() + at + 1 + n);
}

TEST(OfaMbv3, StateDictKeysEqualTheReference) {
  OFAMobileNetV3 net(kClasses);
  std::vector<std::string> keys;
  for (auto& [k, t] : net.state_dict()) keys.push_back(k);
  const auto ref = keys_after("keys_supernet");
  ASSERT_EQ(keys.size(), ref.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(keys[i], ref[i]) << "at " << i;
  EXPECT_TRUE(std::find(keys.begin(), keys.end(), "blocks.3.conv.depth_conv.conv.7to5_matrix") != keys.end());
}

TEST(OfaMbv3, ParameterShapes) {
  OFAMobileNetV3 net(1000);
  std::map<std::string, Shape> shapes;
  for (auto& [k, t] : net.state_dict()) shapes[k] = t.shape();
  EXPECT_EQ(shapes["first_conv.conv.weight"], (Shape{16, 3, 3, 3}));
  EXPECT_EQ(shapes["blocks.1.conv.inverted_bottleneck.conv.conv.weight"], (Shape{96, 16, 1, 1}));
  EXPECT_EQ(shapes["blocks.1.conv.depth_conv.conv.conv.weight"], (Shape{96, 1, 7, 7}));
  EXPECT_EQ(shapes["blocks.1.conv.depth_conv.conv.7to5_matrix"], (Shape{25, 25}));
  EXPECT_EQ(shapes["blocks.1.conv.depth_conv.conv.5to3_matrix"], (Shape{9, 9}));
  EXPECT_EQ(shapes["blocks.5.conv.depth_conv.se.fc.reduce.weight"], (Shape{40, 144, 1, 1}));  // mid = 144 // 4
  EXPECT_EQ(shapes["blocks.20.conv.point_linear.conv.conv.weight"], (Shape{160, 960, 1, 1}));
  EXPECT_EQ(shapes["final_expand_layer.conv.weight"], (Shape{960, 160, 1, 1}));
  EXPECT_EQ(shapes["feature_mix_layer.conv.weight"], (Shape{1280, 960, 1, 1}));
  EXPECT_EQ(shapes["classifier.linear.weight"], (Shape{1000, 1280}));
  EXPECT_EQ(shapes.count("feature_mix_layer.bn.weight"), 0u);
  EXPECT_EQ(shapes["blocks.4.conv.depth_conv.bn.bn.num_batches_tracked"], Shape{});
}

TEST(OfaMbv3, TransformMatricesStartAsIdentity) {
  OFAMobileNetV3 net(10);
  auto& dw = net.block_conv(0).dw_conv();
  Tensor m = dw.matrix(7, 5);
  for (int64_t i = 0; i < 25; ++i)
    for (int64_t j = 0; j < 25; ++j) ASSERT_EQ(m.data<float>()[i * 25 + j], i == j ? 1.0f : 0.0f);
  // With identity matrices, kernel 5 is exactly the centre crop.
  Tensor f5 = dw.active_filter(8, 5).contiguous();
  Tensor crop = dw.conv->weight.narrow(0, 0, 8).narrow(2, 1, 5).narrow(3, 1, 5).contiguous();
  EXPECT_TRUE(all_close(f5, crop, 0, 0));
}

// ---- sampling
TEST(OfaMbv3, SamplingEqualsPythonRandom) {
  const auto& f = golden_file();
  OFAMobileNetV3 net(kClasses);
  int n = 0;
  for (size_t at = f.find("sample"); at != std::string::npos; at = f.find("sample", at + 1)) {
    PyRandom rng(std::stoull(f.lines[at][1]));
    for (int draw = 0; draw < 2; ++draw) {
      const auto ref = parse_setting(f.lines[at + 1 + draw]);
      const auto s = net.sample_active_subnet(rng);
      EXPECT_EQ(s.ks, ref.ks) << "seed " << f.lines[at][1] << " draw " << draw;
      EXPECT_EQ(s.e, ref.e) << "seed " << f.lines[at][1] << " draw " << draw;
      EXPECT_EQ(s.d, ref.d) << "seed " << f.lines[at][1] << " draw " << draw;
      EXPECT_TRUE(net.active_setting() == s);
    }
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(OfaMbv3, ConstrainedSamplingEqualsPythonRandom) {
  const auto& f = golden_file();
  OFAMobileNetV3 net(kClasses);
  net.set_constraint({3, 4}, "depth");
  net.set_constraint({4, 6}, "expand_ratio");
  int n = 0;
  for (size_t at = f.find("sample_constrained"); at != std::string::npos; at = f.find("sample_constrained", at + 1)) {
    PyRandom rng(std::stoull(f.lines[at][1]));
    const auto ref = parse_setting(f.lines[at + 1]);
    const auto s = net.sample_active_subnet(rng);
    EXPECT_EQ(s.ks, ref.ks);
    EXPECT_EQ(s.e, ref.e);
    EXPECT_EQ(s.d, ref.d);
    for (double e : s.e) EXPECT_TRUE(e == 4 || e == 6);
    ++n;
  }
  EXPECT_EQ(n, 2);
  net.clear_constraint();
  PyRandom rng(5);
  bool saw3 = false;
  for (int i = 0; i < 5; ++i)
    for (double e : net.sample_active_subnet(rng).e) saw3 |= e == 3;
  EXPECT_TRUE(saw3);
}

TEST(OfaMbv3, SetActiveSubnetChecksAndCaps) {
  OFAMobileNetV3 net(kClasses);
  net.set_active_subnet({5}, {4}, {3});
  auto s = net.active_setting();
  EXPECT_EQ(s.ks, std::vector<int64_t>(20, 5));
  EXPECT_EQ(s.e, std::vector<double>(20, 4));
  EXPECT_EQ(s.d, std::vector<int64_t>(5, 3));
  net.set_active_subnet({}, {}, {9});  // depth capped at the stage size; ks and e untouched
  EXPECT_EQ(net.active_setting().d, std::vector<int64_t>(5, 4));
  EXPECT_EQ(net.active_setting().ks, std::vector<int64_t>(20, 5));
  EXPECT_TRUE(has(error_of([&] { net.set_active_subnet({4}, {}, {}); }), "kernel size 4 is not in ks_list"));
  EXPECT_TRUE(has(error_of([&] { net.set_active_subnet({3, 5}, {}, {}); }), "give 1 (for all) or 20"));
  EXPECT_TRUE(has(error_of([&] { net.set_constraint({3}, "width"); }), "unknown constraint type 'width'"));
  net.set_max_net();
  EXPECT_EQ(net.active_setting().ks, std::vector<int64_t>(20, 7));
  net.set_min_net();
  EXPECT_EQ(net.active_setting().e, std::vector<double>(20, 3));
}

// ---- forward and gradients against the golden cases
struct CaseId {
  std::string tag;
  int64_t res;
  std::string mode;
};
void PrintTo(const CaseId& c, std::ostream* os) { *os << c.tag << "_" << c.res << "_" << c.mode; }

class OfaMbv3Golden : public ::testing::TestWithParam<CaseId> {};

TEST_P(OfaMbv3Golden, LogitsGradientsAndRunningStats) {
  const CaseId id = GetParam();
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("case"); i != std::string::npos; i = f.find("case", i + 1))
    if (f.lines[i][1] == id.tag && f.lines[i][2] == std::to_string(id.res) && f.lines[i][3] == id.mode) at = i;
  ASSERT_NE(at, std::string::npos) << "no golden case";
  const int64_t batch = std::stoll(f.lines[at][4]);
  const auto setting = parse_setting(f.lines[at + 1]);
  const GoldenCase gc = parse_case(f, at);

  auto net = golden_net();
  net->set_active_subnet(setting.ks, setting.e, setting.d);
  net->train(id.mode == "train");
  Tensor y = net->forward(golden_input(batch, id.res));
  ASSERT_EQ(y.shape(), (Shape{batch, kClasses}));
  EXPECT_TRUE(logits_close(y, gc.logits, 1e-4));
  if (id.mode != "train") return;

  sum(mul(y, golden_logit_weights(batch, kClasses))).backward();
  int64_t compared = 0;
  EXPECT_TRUE(grads_close(net->named_parameters(), gc, 1e-3, &compared));
  EXPECT_GT(compared, 100);
  // Running statistics after one training forward (momentum 0.1, unbiased variance).
  std::map<std::string, Tensor> bufs;
  for (auto& [k, t] : net->named_buffers()) bufs[k] = t;
  for (const auto& [k, ref] : gc.bufs) {
    ASSERT_TRUE(bufs.count(k)) << k;
    EXPECT_NEAR(sum_of(bufs[k]), ref, 1e-4 * (std::fabs(ref) + static_cast<double>(bufs[k].numel()))) << k;
  }
  for (const auto& [k, ref] : gc.nbt) EXPECT_EQ(static_cast<int64_t>(bufs[k].item()), ref) << k;
}

INSTANTIATE_TEST_SUITE_P(Cases, OfaMbv3Golden,
                         ::testing::Values(CaseId{"max", 36, "train"}, CaseId{"min", 40, "train"},
                                           CaseId{"mixed7", 36, "train"}, CaseId{"mixed11", 40, "train"},
                                           CaseId{"mixed7", 36, "eval"}, CaseId{"max", 32, "eval"}),
                         [](const auto& info) { return info.param.tag + "_" + std::to_string(info.param.res) + "_" + info.param.mode; });

// ---- the issue's resolutions: 128, 160 and the odd 131 (66, 33, 17, 9, 5
// pixels after the strided stages). Eval logits of the max, min and mixed7
// subnets at each; training-mode logits and gradient checksums (stored without
// names, in named_parameters() order) for max@128, min@160 and mixed7@131.
class OfaMbv3GoldenHiRes : public ::testing::TestWithParam<CaseId> {};

TEST_P(OfaMbv3GoldenHiRes, LogitsAndGradients) {
  const CaseId id = GetParam();
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("hires"); i != std::string::npos; i = f.find("hires", i + 1))
    if (f.lines[i][1] == id.tag && f.lines[i][2] == std::to_string(id.res) && f.lines[i][3] == id.mode) at = i;
  ASSERT_NE(at, std::string::npos) << "no golden hires case";
  const int64_t batch = std::stoll(f.lines[at][4]);
  const auto setting = parse_setting(f.lines[at + 1]);
  GoldenCase gc = parse_case(f, at);

  auto net = golden_net();
  net->set_active_subnet(setting.ks, setting.e, setting.d);
  if (id.tag == "mixed7") {  // the mixed case must exercise every kernel size and both transforms
    std::set<int64_t> ks;
    for (size_t st = 0; st < setting.d.size(); ++st)
      for (int64_t j = 0; j < setting.d[st]; ++j) ks.insert(setting.ks[st * 4 + static_cast<size_t>(j)]);
    EXPECT_EQ(ks, (std::set<int64_t>{3, 5, 7}));
  }
  net->train(id.mode == "train");
  Tensor y = net->forward(golden_input(batch, id.res));
  ASSERT_EQ(y.shape(), (Shape{batch, kClasses}));
  EXPECT_TRUE(logits_close(y, gc.logits, 1e-4));
  if (id.mode != "train") return;

  sum(mul(y, golden_logit_weights(batch, kClasses))).backward();
  const auto params = net->named_parameters();
  ASSERT_TRUE(resolve_compact_grads(gc, params));
  int64_t compared = 0;
  EXPECT_TRUE(grads_close(params, gc, 1e-3, &compared));
  EXPECT_GT(compared, 100);
  EXPECT_FALSE(gc.no_grad.empty());  // inactive blocks (and, for max, the unused matrices) get none
}

INSTANTIATE_TEST_SUITE_P(
    HiRes, OfaMbv3GoldenHiRes,
    ::testing::Values(CaseId{"max", 128, "eval"}, CaseId{"min", 128, "eval"}, CaseId{"mixed7", 128, "eval"},
                      CaseId{"max", 160, "eval"}, CaseId{"min", 160, "eval"}, CaseId{"mixed7", 160, "eval"},
                      CaseId{"max", 131, "eval"}, CaseId{"min", 131, "eval"}, CaseId{"mixed7", 131, "eval"},
                      CaseId{"max", 128, "train"}, CaseId{"min", 160, "train"}, CaseId{"mixed7", 131, "train"}),
    [](const auto& info) { return info.param.tag + "_" + std::to_string(info.param.res) + "_" + info.param.mode; });

// ---- extraction
GoldenSetting mixed7() {
  const auto& f = golden_file();
  for (size_t i = f.find("case"); i != std::string::npos; i = f.find("case", i + 1))
    if (f.lines[i][1] == "mixed7") return parse_setting(f.lines[i + 1]);
  ADD_FAILURE() << "no mixed7 case";
  return {};
}

TEST(OfaMbv3, ActiveSubnetGivesTheSupernetsLogits) {
  auto net = golden_net();
  const auto s = mixed7();
  net->set_active_subnet(s.ks, s.e, s.d);
  net->eval();
  auto sub = net->get_active_subnet();
  EXPECT_FALSE(sub->is_training());
  Tensor x = golden_input(2, 36);
  Tensor ys = net->forward(x), yt = sub->forward(x);
  EXPECT_TRUE(all_close(yt, ys, 1e-5, 1e-4));
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("case"); i != std::string::npos; i = f.find("case", i + 1))
    if (f.lines[i][1] == "mixed7" && f.lines[i][3] == "eval") at = i;
  ASSERT_NE(at, std::string::npos);
  EXPECT_TRUE(logits_close(yt, parse_case(f, at).logits, 1e-4));
  // The depthwise weights are already transformed: a kernel-3 block holds 3x3.
  for (size_t i = 0; i < sub->blocks.size(); ++i) {
    auto* mb = dynamic_cast<nn::MBConvLayer*>(sub->blocks[i]->conv.get());
    ASSERT_NE(mb, nullptr);
    EXPECT_EQ(mb->depth_conv->conv->weight.size(2), mb->kernel_size);
  }
}

TEST(OfaMbv3, ActiveSubnetInTrainingModeMatchesToo) {
  auto net = golden_net();
  net->set_active_subnet({3, 5, 7, 5, 3, 7, 7, 5, 3, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5}, {3, 4, 6, 6, 4, 3, 3, 4, 6, 6, 4, 3, 3, 4, 6, 6, 4, 3, 3, 4},
                         {2, 3, 4, 3, 2});
  auto sub = net->get_active_subnet();
  EXPECT_TRUE(sub->is_training());
  Tensor x = golden_input(2, 32);
  EXPECT_TRUE(all_close(sub->forward(x), net->forward(x), 1e-5, 1e-4));
}

TEST(OfaMbv3, ActiveConfigKeysAndModuleStrEqualTheReference) {
  auto net = golden_net();
  const auto s = mixed7();
  net->set_active_subnet(s.ks, s.e, s.d);
  const auto& f = golden_file();
  const size_t ac = f.find("active_config");
  ASSERT_NE(ac, std::string::npos);
  const nn::json ref = nn::json::parse(f.raw[ac].substr(std::string("active_config ").size()));
  EXPECT_EQ(net->get_active_net_config(), ref) << net->get_active_net_config().dump();
  const size_t ms = f.find("module_str");
  const std::string ref_str = nn::json::parse(f.raw[ms].substr(std::string("module_str ").size())).get<std::string>();
  EXPECT_EQ(net->module_str(), ref_str);

  auto sub = net->get_active_subnet();
  std::vector<std::string> keys;
  for (auto& [k, t] : sub->state_dict()) keys.push_back(k);
  EXPECT_EQ(keys, keys_after("keys_subnet"));
  EXPECT_TRUE(std::find(keys.begin(), keys.end(), "blocks.1.conv.inverted_bottleneck.conv.weight") != keys.end());
  // copy_bn leaves num_batches_tracked of the extracted blocks at 0, deepcopy keeps the rest.
  net->train();
  net->forward(golden_input(2, 32));
  auto sub2 = net->get_active_subnet();
  std::map<std::string, Tensor> sd;
  for (auto& [k, t] : sub2->state_dict()) sd[k] = t;
  EXPECT_EQ(sd["first_conv.bn.num_batches_tracked"].item(), 1.0);
  EXPECT_EQ(sd["blocks.1.conv.point_linear.bn.num_batches_tracked"].item(), 0.0);
}

// ---- net info
TEST(OfaMbv3, NetInfoEqualsTheReferenceCounts) {
  OFAMobileNetV3 net(1000);  // the published w1.0 supernet
  const auto& f = golden_file();
  std::map<std::string, GoldenSetting> settings{
      {"max", {std::vector<int64_t>(20, 7), std::vector<int64_t>(5, 4), std::vector<double>(20, 6)}},
      {"min", {std::vector<int64_t>(20, 3), std::vector<int64_t>(5, 2), std::vector<double>(20, 3)}},
      {"mid", {std::vector<int64_t>(20, 5), std::vector<int64_t>(5, 3), std::vector<double>(20, 4)}},
      {"mixed7", mixed7()}};
  int n = 0;
  for (size_t at = f.find("netinfo"); at != std::string::npos; at = f.find("netinfo", at + 1)) {
    const auto& t = f.lines[at];
    const auto& s = settings.at(t[1]);
    net.set_active_subnet(s.ks, s.e, s.d);
    const auto i224 = net.active_net_info(224), i128 = net.active_net_info(128), i160 = net.active_net_info(160);
    EXPECT_EQ(i224.params, std::stoll(t[2])) << t[1];
    EXPECT_EQ(i224.macs, std::stoll(t[3])) << t[1];
    EXPECT_EQ(i128.macs, std::stoll(t[4])) << t[1];
    EXPECT_EQ(i160.macs, std::stoll(t[5])) << t[1];
    ++n;
  }
  EXPECT_EQ(n, 4);
  // The published numbers (docs/ofa-reference.md).
  auto round_to = [](double v, double q) { return std::round(v / q) * q; };
  net.set_max_net();
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).params / 1e6, 1e-3), round_to(7.665, 1e-3));
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).macs / 1e6, 1e-2), round_to(566.17, 1e-2));
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(128).macs / 1e6, 1e-2), round_to(188.25, 1e-2));
  net.set_min_net();
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).params / 1e6, 1e-3), round_to(3.411, 1e-3));
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).macs / 1e6, 1e-2), round_to(121.28, 1e-2));
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(128).macs / 1e6, 1e-2), round_to(41.48, 1e-2));
  net.set_active_subnet({5}, {4}, {3});
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).params / 1e6, 1e-3), round_to(4.552, 1e-3));
  EXPECT_DOUBLE_EQ(round_to(net.active_net_info(224).macs / 1e6, 1e-2), round_to(250.75, 1e-2));
  // The extracted network holds exactly the counted parameters.
  EXPECT_EQ(net.get_active_subnet()->count_parameters(), net.active_net_info(224).params);
}

// ---- re-organisation of the middle channels
class OfaMbv3Reorganize : public ::testing::TestWithParam<int64_t> {};

TEST_P(OfaMbv3Reorganize, SortsAsTheReferenceAndKeepsTheMaxNet) {
  const int64_t stage = GetParam();
  const auto& f = golden_file();
  size_t at = std::string::npos;
  for (size_t i = f.find("reorg"); i != std::string::npos; i = f.find("reorg", i + 1))
    if (std::stoll(f.lines[i][1]) == stage) at = i;
  ASSERT_NE(at, std::string::npos);

  auto net = golden_net();
  net->set_max_net();
  net->eval();
  Tensor x = golden_input(2, 32);
  Tensor before = net->forward(x);
  const auto orders = net->re_organize_middle_weights(stage);
  ASSERT_EQ(orders.size(), 20u);
  std::map<std::string, Tensor> params;
  for (auto& [k, t] : net->named_parameters()) params[k] = t;
  int64_t n_orders = 0, n_sums = 0;
  for (size_t i = at + 1; i < f.lines.size() && f.lines[i][0] != "end"; ++i) {
    const auto& t = f.lines[i];
    if (t[0] == "order") {
      const size_t b = std::stoul(t[1]) - 1;
      for (size_t j = 2; j < t.size(); ++j) EXPECT_EQ(orders[b][j - 2], std::stoll(t[j])) << "block " << b + 1 << " @" << j - 2;
      // A permutation of the middle channels.
      std::vector<int64_t> o = orders[b];
      std::sort(o.begin(), o.end());
      for (size_t j = 0; j < o.size(); ++j) ASSERT_EQ(o[j], static_cast<int64_t>(j));
      ++n_orders;
    } else if (t[0] == "wsum") {
      ASSERT_TRUE(params.count(t[1])) << t[1];
      const auto v = params[t[1]].detach().to(DType::F64).contiguous().to_vector<double>();
      double s = 0, a = 0;
      for (size_t j = 0; j < v.size(); ++j) {
        s += v[j] * static_cast<double>(j % 97 + 1) / 97.0;
        a += std::fabs(v[j]);
      }
      EXPECT_NEAR(s, std::stod(t[2]), 1e-6 * a + 1e-12) << t[1];
      ++n_sums;
    } else if (t[0] == "logits") {
      Tensor after = net->forward(x);
      EXPECT_TRUE(logits_close(after, parse_values(t), 1e-4));
      EXPECT_TRUE(all_close(after, before, 1e-5, 1e-4));  // a permutation leaves the max net's function alone
    }
  }
  EXPECT_EQ(n_orders, 20);
  EXPECT_GT(n_sums, 200);
}

INSTANTIATE_TEST_SUITE_P(Stages, OfaMbv3Reorganize, ::testing::Values(0, 1));

TEST(OfaMbv3, ReorganizeStage1PushesTheOuterChannelsBehind) {
  auto net = golden_net();
  const auto orders = net->re_organize_middle_weights(1);
  // Block 1: in 16, widths 96 (e6) and 64 (e4): the first 64 come from the first 64.
  for (int64_t j = 0; j < 64; ++j) EXPECT_LT(orders[0][j], 64);
  for (int64_t j = 64; j < 96; ++j) EXPECT_GE(orders[0][j], 64);
}

// ---- checkpoints with the reference's older or static key names
TEST(OfaMbv3, LoadsReferenceCheckpointKeys) {
  auto src = golden_net();
  nn::NamedTensors old;
  for (auto& [k, t] : src->state_dict()) {
    std::string key = k;
    const size_t at = key.find(".conv.");
    // blocks.N.conv.X -> blocks.N.mobile_inverted_conv.X (pre-2020 checkpoints)
    if (key.rfind("blocks.", 0) == 0 && at != std::string::npos) key.replace(at, 6, ".mobile_inverted_conv.");
    // a static-style name for one dynamic BN and the classifier's dynamic-style name
    if (key == "blocks.2.mobile_inverted_conv.point_linear.bn.bn.weight") key = "blocks.2.mobile_inverted_conv.point_linear.bn.weight";
    if (key == "classifier.linear.bias") key = "classifier.linear.linear.bias";
    old.emplace_back(key, t);
  }
  OFAMobileNetV3 dst(kClasses, 0.1, 1e-5, 0.0);
  dst.load_reference_state_dict(old);
  auto a = src->state_dict(), b = dst.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(all_close(b[i].second.to(DType::F64), a[i].second.to(DType::F64), 0, 0)) << a[i].first;
  nn::NamedTensors bad{{"blocks.1.conv.nonsense", zeros({1})}};
  EXPECT_TRUE(has(error_of([&] { dst.map_reference_keys(bad); }), "no rule places checkpoint key 'blocks.1.conv.nonsense'"));
}

// ---- the kernel transform carries gradients into the 7x7 weight and both matrices
TEST(OfaMbv3, KernelTransformGradientsReachWeightAndMatrices) {
  nn::DynamicSeparableConv2d dw(8, {3, 5, 7}, 1);
  golden_init(dw);
  Tensor x = golden_uniform_pm1("x", {2, 6, 9, 9}).set_requires_grad(false);
  Tensor y = dw.forward(x, 3);
  sum(mul(y, y)).backward();
  EXPECT_GT(sumsq_of(dw.matrix(7, 5).grad()), 0.0);
  EXPECT_GT(sumsq_of(dw.matrix(5, 3).grad()), 0.0);
  Tensor g = dw.conv->weight.grad();
  ASSERT_TRUE(g.defined());
  // Only the first 6 channels and the centre 5x5 of the 7x7 take part.
  EXPECT_EQ(sumsq_of(g.narrow(0, 6, 2)), 0.0);
  EXPECT_EQ(sumsq_of(g.narrow(2, 0, 1)), 0.0);
  EXPECT_GT(sumsq_of(g.narrow(0, 0, 6).narrow(2, 1, 5).narrow(3, 1, 5)), 0.0);
  // Kernel 3 = centre 3x3 of (crop5 @ M75^T) times M53^T, computed by hand.
  Tensor w = dw.conv->weight.detach().to(DType::F64);
  Tensor m75 = dw.matrix(7, 5).detach().to(DType::F64), m53 = dw.matrix(5, 3).detach().to(DType::F64);
  Tensor f5 = matmul(w.narrow(0, 0, 6).narrow(2, 1, 5).narrow(3, 1, 5).reshape({6, 25}), m75.transpose(0, 1));
  Tensor f3 = matmul(f5.reshape({6, 1, 5, 5}).narrow(2, 1, 3).narrow(3, 1, 3).reshape({6, 9}), m53.transpose(0, 1));
  EXPECT_TRUE(all_close(dw.active_filter(6, 3).to(DType::F64).reshape({6, 9}), f3, 1e-6, 1e-5));
}

}  // namespace
}  // namespace ofa::test
