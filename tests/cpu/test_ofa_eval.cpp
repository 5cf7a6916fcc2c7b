// ofa_eval's tensor mode (ofa/eval_tensors.h, ofa/bn_calibration.h,
// tools/ofa_eval.cpp, tools/convert_pytorch_checkpoint.py) against
// tests/data/ofa_eval_golden.txt (tests/data/make_ofa_eval_golden.py: the
// reference's set_running_statistics, evaluation and one SGD training step on
// the PyTorch re-implementation of make_ofa_golden.py), plus export/reload,
// checkpoint metadata, argument errors, the built binary and the converter.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "ofa/bn_calibration.h"
#include "ofa/eval_tensors.h"
#include "ofa_golden.h"
#include "tests/support/test_util.h"

namespace ofa::test {
namespace {

namespace fs = std::filesystem;
using nn::NetCheckpoint;
using nn::OFAMobileNetV3;

constexpr int64_t kClasses = 10;

const GoldenFile& eval_golden() {
  static GoldenFile g = [] {
    GoldenFile f;
    std::ifstream in(std::string(OFA_TEST_DATA_DIR) + "/ofa_eval_golden.txt");
    EXPECT_TRUE(in.good()) << "tests/data/ofa_eval_golden.txt is missing";
    std::string line;
    while (std::getline(in, line)) {
      f.raw.push_back(line);
      std::istringstream is(line);
      std::vector<std::string> tok;
      std::string t;
      while (is >> t) tok.push_back(t);
      f.lines.push_back(tok);
    }
    return f;
  }();
  return g;
}

std::shared_ptr<OFAMobileNetV3> golden_net() {
  auto net = std::make_shared<OFAMobileNetV3>(kClasses, 0.1, 1e-5, 0.0);
  golden_init(*net);
  net->eval();
  return net;
}

// A fresh directory per test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ofa_eval_test_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Position-weighted checksum of make_ofa_golden.py's wsum.
double wsum_of(const Tensor& t) {
  const auto v = t.detach().to(DType::F64).contiguous().to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * (static_cast<double>(i % 97) + 1) / 97.0;
  return s;
}
double abs_sum_of(const Tensor& t) {
  double s = 0;
  for (double v : t.detach().to(DType::F64).contiguous().to_vector<double>()) s += std::fabs(v);
  return s;
}

std::map<std::string, Tensor> by_name(const nn::NamedTensors& v) { return {v.begin(), v.end()}; }
std::map<std::string, Tensor> by_name(const SafetensorsFile& f) { return {f.tensors.begin(), f.tensors.end()}; }

size_t find_head(const GoldenFile& f, const std::string& head) {
  const size_t at = f.find(head);
  EXPECT_NE(at, std::string::npos) << "no '" << head << "' record in ofa_eval_golden.txt";
  return at;
}

std::string seed_subnet_json(uint64_t seed, int64_t r) {
  OFAMobileNetV3 net(kClasses);
  PyRandom rng(seed);
  return nn::subnet_json_line(net.sample_active_subnet(rng), r);
}

// Static subnet name -> the supernet name it was cut from (block indices
// follow the active depths; dynamic layers add ".bn." -> ".bn.bn." and
// ".conv.weight" -> ".conv.conv.weight").
std::function<std::string(const std::string&)> static_to_supernet_key(const OFAMobileNetV3& net) {
  std::vector<int64_t> idx{0};
  for (size_t st = 0; st < net.block_group_info.size(); ++st)
    for (int64_t i = 0; i < net.runtime_depth[st]; ++i) idx.push_back(net.block_group_info[st][i]);
  return [idx](const std::string& k) {
    if (k.rfind("blocks.", 0) != 0) return k;
    const size_t dot = k.find('.', 7);
    const int64_t j = std::stoll(k.substr(7, dot - 7));
    std::string rest = k.substr(dot);
    if (j > 0) {
      if (rest.find(".bn.") != std::string::npos) rest.replace(rest.find(".bn."), 4, ".bn.bn.");
      else if (rest.find(".se.") == std::string::npos && ends_with(rest, ".conv.weight"))
        rest.replace(rest.size() - 12, 12, ".conv.conv.weight");
    }
    return "blocks." + std::to_string(idx.at(static_cast<size_t>(j))) + rest;
  };
}

// ================================================================ BN recalibration

TEST(BnCalib, SupernetSubnetMatchesTheReference) {
  const auto& f = eval_golden();
  const size_t at = find_head(f, "calib");
  ASSERT_NE(at, std::string::npos);
  auto net = golden_net();
  PyRandom rng(7);
  net->sample_active_subnet(rng);
  const auto ref_setting = parse_setting(f.lines[at + 1]);
  ASSERT_EQ(net->active_setting().ks, ref_setting.ks);
  ASSERT_EQ(net->active_setting().e, ref_setting.e);
  const auto before = by_name(net->state_dict());
  std::map<std::string, Tensor> saved;
  for (auto& [k, t] : before) saved[k] = t.clone();

  // "calib SEED R M B": M images at R x R in batches of B.
  const int64_t r = std::stoll(f.lines[at][2]), m = std::stoll(f.lines[at][3]), bs = std::stoll(f.lines[at][4]);
  nn::set_running_statistics(*net, golden_uniform_pm1("calib", {m, 3, r, r}), bs);

  auto bufs = by_name(net->named_buffers());
  int updated = 0, untouched = 0;
  for (size_t i = at + 2; f.lines[i][0] != "end"; ++i) {
    const auto& t = f.lines[i];
    if (t[0] != "buf") continue;
    const Tensor& b = bufs.at(t[1]);
    if (std::stoll(t[2]) == 0) {  // a BN of an inactive block: must be left exactly as it was
      EXPECT_TRUE(all_close(b, saved.at(t[1]), 0, 0)) << t[1];
      ++untouched;
      continue;
    }
    const double s = std::stod(t[3]), w = std::stod(t[4]), scale = abs_sum_of(b);
    EXPECT_NEAR(sum_of(b), s, 1e-4 * std::fabs(s) + 1e-5 * scale) << t[1];
    EXPECT_NEAR(wsum_of(b), w, 1e-4 * std::fabs(w) + 1e-5 * scale) << t[1];
    ++updated;
  }
  EXPECT_GT(updated, 40);
  EXPECT_GT(untouched, 10);
  // Parameters and num_batches_tracked are not touched.
  for (auto& [k, t] : net->state_dict())
    if (!ends_with(k, "running_mean") && !ends_with(k, "running_var"))
      EXPECT_TRUE(all_close(t, saved.at(k), 0, 0)) << k;

  const size_t lg = f.find("logits", at);
  Tensor y = nn::eval_logits(NetCheckpoint{"", {}, net, nullptr}, golden_input(2, r));
  EXPECT_TRUE(logits_close(y, parse_values(f.lines[lg]), 1e-4));
}

// Channels beyond the active width keep their values; only [:C] is written.
TEST(BnCalib, WritesOnlyTheActiveLeadingSlice) {
  auto net = golden_net();
  net->set_min_net();
  auto& bn = *net->block_conv(0).depth_conv->bn->bn;  // 96 stored channels, min subnet uses 48
  Tensor before = bn.running_var.clone();
  nn::set_running_statistics(*net, golden_uniform_pm1("calib", {3, 3, 36, 36}), 3);
  const int64_t c = nn::round_make_divisible(16, 3.0);
  ASSERT_LT(c, bn.running_var.size(0));
  EXPECT_TRUE(all_close(bn.running_var.narrow(0, c, bn.running_var.size(0) - c),
                        before.narrow(0, c, before.size(0) - c), 0, 0));
  EXPECT_FALSE(all_close(bn.running_var.narrow(0, 0, c), before.narrow(0, 0, c), 1e-3, 0));
}

// One batch: the running statistics are that batch's mean and biased variance.
// Several batches: means average to the overall mean (equal weights per
// image), variances are the average within-batch variance (smaller).
TEST(BnCalib, BatchStatisticsAndWeighting) {
  auto a = golden_net(), b = golden_net();
  a->set_min_net();
  b->set_min_net();
  Tensor calib = golden_uniform_pm1("calib", {5, 3, 36, 36});
  nn::set_running_statistics(*a, calib, 5);
  nn::set_running_statistics(*b, calib, 2);
  // first_conv sees the images directly: check its statistics by hand.
  Tensor x = a->first_conv->conv->forward(calib);
  Tensor m = mean(x, {0, 2, 3});
  Tensor d = sub(x, m.reshape({1, x.size(1), 1, 1}));
  Tensor v = mean(mul(d, d), {0, 2, 3});
  EXPECT_TRUE(all_close(a->first_conv->bn->running_mean, m, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(a->first_conv->bn->running_var, v, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(b->first_conv->bn->running_mean, m, 1e-6, 1e-5));
  const auto va = a->first_conv->bn->running_var.to_vector<float>(), vb = b->first_conv->bn->running_var.to_vector<float>();
  double sa = 0, sb = 0;
  for (size_t i = 0; i < va.size(); ++i) sa += va[i], sb += vb[i];
  EXPECT_LT(sb, sa);
}

TEST(BnCalib, StaticSubnetEqualsTheSupernetSlices) {
  auto net = golden_net();
  PyRandom rng(11);
  net->sample_active_subnet(rng);
  auto sub = net->get_active_subnet();
  Tensor calib = golden_uniform_pm1("calib", {4, 3, 40, 40});
  nn::set_running_statistics(*net, calib, 3);
  nn::set_running_statistics(*sub, calib, 3);
  NoGradGuard ng;
  net->eval();
  sub->eval();
  Tensor x = golden_input(2, 40);
  EXPECT_TRUE(all_close(sub->forward(x), net->forward(x), 1e-6, 1e-5));
  // The same statistics, by name: static "blocks.J.conv.X.bn.running_var" is
  // the supernet's "blocks.I.conv.X.bn.bn.running_var"[:C], I the J-th active block.
  const auto map = static_to_supernet_key(*net);
  auto sup = by_name(net->named_buffers());
  int n = 0;
  for (auto& [k, t] : sub->named_buffers()) {
    if (!ends_with(k, "running_var") && !ends_with(k, "running_mean")) continue;
    const std::string dk = map(k);
    ASSERT_TRUE(sup.count(dk)) << k << " -> " << dk;
    EXPECT_TRUE(all_close(t, sup.at(dk).narrow(0, 0, t.size(0)), 1e-7, 1e-5)) << k;
    ++n;
  }
  EXPECT_GT(n, 40);
}

TEST(BnCalib, ClearErrors) {
  auto net = golden_net();
  EXPECT_TRUE(has(error_of([&] { nn::set_running_statistics(*net, zeros({2, 1, 8, 8}), 2); }), "[2, 1, 8, 8]"));
  EXPECT_TRUE(has(error_of([&] { nn::set_running_statistics(*net, zeros({2, 3, 32, 32}), 0); }), "batch size 0"));
}

// ================================================================ ofa_eval

struct SupernetFixture {
  TempDir dir;
  std::string ck;
  SupernetFixture() {
    auto net = golden_net();
    ck = dir / "super.safetensors";
    nn::save_supernet_checkpoint(ck, *net);
  }
};

nn::EvalOptions args(const std::vector<std::string>& a) { return nn::parse_eval_args(a); }

TEST(OfaEval, SupernetCheckpointRoundTripAndMetadata) {
  SupernetFixture fx;
  const SafetensorsFile f = load_safetensors(fx.ck);
  EXPECT_EQ(f.metadata.at("format"), "OFAMobileNetV3");
  EXPECT_EQ(f.metadata.at("n_classes"), "10");
  EXPECT_EQ(f.metadata.at("ks_list"), "[3,5,7]");
  EXPECT_EQ(f.metadata.at("expand_ratio_list"), "[3,4,6]");
  EXPECT_EQ(f.metadata.at("depth_list"), "[2,3,4]");
  EXPECT_EQ(f.metadata.at("dropout_rate"), "0.0");
  const NetCheckpoint ck = nn::load_net_checkpoint(fx.ck);
  ASSERT_TRUE(ck.is_supernet());
  auto ref = golden_net();
  auto mine = by_name(ck.supernet->state_dict());
  for (auto& [k, t] : ref->state_dict()) EXPECT_TRUE(all_close(mine.at(k), t, 0, 0)) << k;
  EXPECT_EQ(ck.supernet->classifier->dropout_rate, 0.0);
}

TEST(OfaEval, EvalLogitsOfASampledSubnetAtAnOddResolution) {
  const auto& f = eval_golden();
  const size_t at = find_head(f, "eval");
  ASSERT_NE(at, std::string::npos);
  SupernetFixture fx;
  save_safetensors(fx.dir / "in.safetensors", {{"images", golden_input(2, 37)}});
  nn::run_ofa_eval(args({"--checkpoint", fx.ck, "--sample-seed", "11", "--tensors", fx.dir / "in.safetensors", "--dump",
                         fx.dir / "out.safetensors"}),
                   std::cout);
  const SafetensorsFile out = load_safetensors(fx.dir / "out.safetensors");
  ASSERT_EQ(out.tensors.size(), 1u);
  const Tensor& y = out.at("logits");
  EXPECT_EQ(y.shape(), (Shape{2, kClasses}));
  EXPECT_EQ(y.dtype(), DType::F32);
  EXPECT_TRUE(logits_close(y, parse_values(f.lines[at + 1]), 1e-4));
}

TEST(OfaEval, CalibrationThenEvalMatchesTheReference) {
  const auto& f = eval_golden();
  const size_t at = find_head(f, "calib");
  ASSERT_NE(at, std::string::npos);
  SupernetFixture fx;
  const int64_t r = std::stoll(f.lines[at][2]), m = std::stoll(f.lines[at][3]);
  const std::string bs = f.lines[at][4];
  write_text(fx.dir / "sub.json", seed_subnet_json(7, r));
  save_safetensors(fx.dir / "calib.safetensors", {{"images", golden_uniform_pm1("calib", {m, 3, r, r})}});
  save_safetensors(fx.dir / "in.safetensors", {{"images", golden_input(2, r)}});
  nn::run_ofa_eval(args({"--checkpoint", fx.ck, "--subnet", fx.dir / "sub.json", "--tensors", fx.dir / "in.safetensors",
                         "--dump", fx.dir / "out.safetensors", "--calib-tensors", fx.dir / "calib.safetensors",
                         "--calib-batch-size", bs, "--device", "cpu"}),
                   std::cout);
  const SafetensorsFile out = load_safetensors(fx.dir / "out.safetensors");
  EXPECT_TRUE(logits_close(out.at("logits"), parse_values(f.lines[f.find("logits", at)]), 1e-4));
}

TEST(OfaEval, TrainStepMatchesTheReference) {
  const auto& f = eval_golden();
  const size_t at = find_head(f, "train");
  ASSERT_NE(at, std::string::npos);
  SupernetFixture fx;
  write_text(fx.dir / "run.yaml",
             "base_lr: 0.05\nmomentum: 0.9\nno_nesterov: false\nweight_decay: 3.0e-5\nlabel_smoothing: 0.1\n"
             "no_decay_keys: bn#bias\n");
  save_safetensors(fx.dir / "in.safetensors",
                   {{"images", golden_input(3, 36)}, {"labels", from_vector<int64_t>({1, 7, 3}, {3})}});
  nn::run_ofa_eval(args({"--checkpoint", fx.ck, "--sample-seed", "7", "--tensors", fx.dir / "in.safetensors", "--dump",
                         fx.dir / "out.safetensors", "--train-step", "--config", fx.dir / "run.yaml"}),
                   std::cout);
  const SafetensorsFile out = load_safetensors(fx.dir / "out.safetensors");
  const auto o = by_name(out);
  const GoldenCase gc = parse_case(f, at);

  const double ref_loss = std::stod(f.lines[f.find("loss", at)][1]);
  ASSERT_EQ(o.at("loss").shape(), Shape{1});
  EXPECT_NEAR(o.at("loss").item(), ref_loss, 1e-5 * std::fabs(ref_loss));
  EXPECT_TRUE(logits_close(o.at("logits"), gc.logits, 1e-4));

  // Gradients: stand-in tensors carrying OUT's grad.<name> for grads_close.
  auto ref = golden_net();
  const auto init = by_name(ref->named_parameters());
  nn::NamedTensors carriers;
  for (auto& [k, p] : ref->named_parameters()) {
    ASSERT_TRUE(o.count("grad." + k)) << k;
    ASSERT_TRUE(o.count("param." + k)) << k;
    Tensor c = zeros_like(p);
    c.set_grad(o.at("grad." + k));
    carriers.emplace_back(k, c);
  }
  int64_t compared = 0;
  EXPECT_TRUE(grads_close(carriers, gc, 1e-3, &compared));
  EXPECT_GT(compared, 100);

  // Parameters after the step: the values to 1e-5, the update itself to 1e-3.
  // Updates that are zero analytically (float32 noise here, as the gradients
  // in grads_close) and float32 rounding of the parameter itself set a floor.
  double max_update = 0;
  for (size_t i = at + 1; f.lines[i][0] != "end"; ++i)
    if (f.lines[i][0] == "param") max_update = std::max(max_update, std::sqrt(std::stod(f.lines[i][5])));
  int n = 0;
  for (size_t i = at + 1; f.lines[i][0] != "end"; ++i) {
    const auto& t = f.lines[i];
    if (t[0] != "param") continue;
    const Tensor& p = o.at("param." + t[1]);
    const double s = std::stod(t[2]), abs_s = std::stod(t[3]), ds = std::stod(t[4]), dss = std::stod(t[5]);
    EXPECT_NEAR(sum_of(p), s, 1e-5 * abs_s) << t[1];
    Tensor delta = sub(p, init.at(t[1]).detach());
    const double root_n = std::sqrt(static_cast<double>(delta.numel()));
    const double floor = 1e-5 * max_update + 1e-6 * std::sqrt(sumsq_of(p));
    if (dss == 0) {
      EXPECT_EQ(sumsq_of(delta), 0.0) << t[1] << " changed but PyTorch left it";
    } else {
      EXPECT_NEAR(std::sqrt(sumsq_of(delta)), std::sqrt(dss), 1e-3 * std::sqrt(dss) + floor) << t[1];
      EXPECT_NEAR(sum_of(delta), ds, 1e-3 * std::fabs(ds) + 1e-4 * std::sqrt(dss) * root_n + floor * root_n) << t[1];
    }
    ++n;
  }
  EXPECT_GT(n, 200);
  // BN buffers after the step.
  for (const auto& [k, s] : gc.bufs) {
    const Tensor& b = o.at("buffer." + k);
    EXPECT_NEAR(sum_of(b), s, 1e-4 * std::fabs(s) + 1e-5 * abs_sum_of(b)) << k;
  }
  for (const auto& [k, v] : gc.nbt) EXPECT_EQ(static_cast<int64_t>(o.at("buffer." + k).item()), v) << k;
  EXPECT_FALSE(gc.nbt.empty());
}

// The training step of an exported static subnet equals the supernet's step
// on the same subnet: loss, logits, and every gradient of a weight that is a
// plain slice (all but the transformed depthwise kernels).
TEST(OfaEval, StaticSubnetTrainStepEqualsTheSupernets) {
  auto net = golden_net();
  PyRandom rng(11);
  net->sample_active_subnet(rng);
  auto sub = net->get_active_subnet();
  const auto map = static_to_supernet_key(*net);
  const Tensor x = golden_input(3, 36);
  const Tensor labels = from_vector<int64_t>({0, 5, 9}, {3});
  const nn::TrainStepHyper h;
  const auto os = by_name(nn::train_step(NetCheckpoint{"", {}, nullptr, sub}, x, labels, h));
  const auto on = by_name(nn::train_step(NetCheckpoint{"", {}, net, nullptr}, x, labels, h));
  EXPECT_NEAR(os.at("loss").item(), on.at("loss").item(), 1e-5 * on.at("loss").item());
  EXPECT_TRUE(all_close(os.at("logits"), on.at("logits"), 1e-6, 1e-5));
  int n = 0;
  for (auto& [k, p] : sub->named_parameters()) {
    if (k.find("depth_conv.conv.weight") != std::string::npos && k.rfind("blocks.0.", 0) != 0) continue;
    const std::string dk = map(k);
    ASSERT_TRUE(on.count("grad." + dk)) << k << " -> " << dk;
    Tensor g = on.at("grad." + dk);
    for (int64_t d = 0; d < p.dim(); ++d) g = g.narrow(d, 0, p.size(d));
    const Tensor gs = os.at("grad." + k);
    EXPECT_TRUE(all_close(gs, g, 1e-5 * std::sqrt(sumsq_of(g) / static_cast<double>(g.numel())) + 1e-9, 1e-3)) << k;
    ++n;
  }
  EXPECT_GT(n, 100);
}

// RUN.yaml keys map to the step: bn_momentum (set explicitly) scales the
// running-statistic update; an unset key leaves the checkpoint's value.
TEST(OfaEval, TrainStepTakesTheRunYamlKeys) {
  TempDir dir;
  write_text(dir / "a.yaml", "base_lr: 0.05\nno_nesterov: true\nlabel_smoothing: 0.0\nno_decay_keys: None\n");
  write_text(dir / "b.yaml", "base_lr: 0.05\nbn_momentum: 0.5\n");
  const nn::TrainStepHyper a = nn::train_step_hyper_from_config(dir / "a.yaml");
  EXPECT_EQ(a.lr, 0.05);
  EXPECT_FALSE(a.nesterov);
  EXPECT_EQ(a.label_smoothing, 0.0);
  EXPECT_TRUE(a.no_decay_keys.empty());
  EXPECT_FALSE(a.bn_momentum.has_value());
  const nn::TrainStepHyper b = nn::train_step_hyper_from_config(dir / "b.yaml");
  EXPECT_TRUE(b.nesterov);
  EXPECT_EQ(b.no_decay_keys, (std::vector<std::string>{"bn", "bias"}));
  ASSERT_TRUE(b.bn_momentum.has_value());

  const Tensor x = golden_input(2, 36);
  const Tensor labels = from_vector<int64_t>({4, 9}, {2});
  auto na = golden_net(), nb = golden_net();
  const auto init = by_name(golden_net()->named_buffers());
  const auto oa = by_name(nn::train_step(NetCheckpoint{"", {}, na, nullptr}, x, labels, a));
  const auto ob = by_name(nn::train_step(NetCheckpoint{"", {}, nb, nullptr}, x, labels, b));
  const std::string k = "first_conv.bn.running_mean";
  // running = (1 - m) * old + m * batch: the change scales with m.
  EXPECT_TRUE(all_close(sub(ob.at("buffer." + k), init.at(k)), mul(sub(oa.at("buffer." + k), init.at(k)), 5.0), 1e-7, 1e-4));
  EXPECT_EQ(oa.at("buffer.first_conv.bn.num_batches_tracked").item(), 1.0);
  EXPECT_TRUE(all_close(oa.at("logits"), ob.at("logits"), 0, 0));  // same forward
}

TEST(OfaEval, ExportedSubnetReloadsWithTheSameLogits) {
  const auto& f = eval_golden();
  const size_t at = find_head(f, "eval");
  ASSERT_NE(at, std::string::npos);
  SupernetFixture fx;
  const std::string sub_json = seed_subnet_json(11, 37);
  write_text(fx.dir / "sub.json", sub_json);
  nn::run_ofa_eval(args({"--checkpoint", fx.ck, "--subnet", fx.dir / "sub.json", "--export-subnet", fx.dir / "sub.safetensors"}),
                   std::cout);
  const SafetensorsFile sf = load_safetensors(fx.dir / "sub.safetensors");
  EXPECT_EQ(sf.metadata.at("format"), "MobileNetV3");
  EXPECT_EQ(sf.metadata.at("subnet"), sub_json);
  EXPECT_EQ(sf.metadata.at("image_size"), "37");
  EXPECT_EQ(nn::json::parse(sf.metadata.at("net_config"))["name"], "MobileNetV3");
  EXPECT_TRUE(sf.contains("blocks.1.conv.inverted_bottleneck.conv.weight"));
  EXPECT_TRUE(sf.contains("blocks.1.conv.depth_conv.bn.running_var"));
  EXPECT_FALSE(sf.contains("blocks.1.conv.depth_conv.conv.7to5_matrix"));

  save_safetensors(fx.dir / "in.safetensors", {{"images", golden_input(2, 37)}});
  nn::run_ofa_eval(args({"--checkpoint", fx.dir / "sub.safetensors", "--tensors", fx.dir / "in.safetensors", "--dump",
                         fx.dir / "out.safetensors"}),
                   std::cout);
  const Tensor y = load_safetensors(fx.dir / "out.safetensors").at("logits");
  EXPECT_TRUE(logits_close(y, parse_values(f.lines[at + 1]), 1e-4));
  // And the same numbers as the supernet itself.
  auto net = golden_net();
  PyRandom rng(11);
  net->sample_active_subnet(rng);
  EXPECT_TRUE(all_close(y, nn::eval_logits(NetCheckpoint{"", {}, net, nullptr}, golden_input(2, 37)), 1e-6, 1e-5));
}

TEST(OfaEval, InfoOfTheMaxSubnetOfThe1000ClassSupernet) {
  TempDir dir;
  OFAMobileNetV3 net(1000);
  nn::save_supernet_checkpoint(dir / "ck.safetensors", net);
  write_text(dir / "max.json", nn::subnet_json_line({std::vector<int64_t>(20, 7), std::vector<double>(20, 6),
                                                     std::vector<int64_t>(5, 4)}, 224));
  std::ostringstream out;
  nn::run_ofa_eval(args({"--checkpoint", dir / "ck.safetensors", "--subnet", dir / "max.json", "--info"}), out);
  const std::string s = out.str();
  std::istringstream lines(s);
  std::string l1, l2, l3;
  std::getline(lines, l1);
  std::getline(lines, l2);
  std::getline(lines, l3);
  EXPECT_EQ(l1, "{\"ks\": [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7], \"e\": [6, 6, 6, 6, 6, 6, 6, 6, 6, "
                "6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6], \"d\": [4, 4, 4, 4, 4], \"r\": [224]}");
  EXPECT_TRUE(has(l2, "(7.665M)")) << l2;  // the reference: 7.665M parameters
  EXPECT_TRUE(has(l3, "(566.17")) << l3;   // 566.17M MACs at 224
  // --image-size overrides the subnet's r; 188.25M MACs at 128.
  std::ostringstream out128;
  nn::run_ofa_eval(args({"--checkpoint", dir / "ck.safetensors", "--subnet", dir / "max.json", "--info", "--image-size", "128"}),
                   out128);
  EXPECT_TRUE(has(out128.str(), "(188.25")) << out128.str();
  EXPECT_TRUE(has(out128.str(), "\"r\": [128]")) << out128.str();
  // --sample-seed gives the subnet random.seed(S); sample_active_subnet() gives.
  std::ostringstream out7;
  nn::run_ofa_eval(args({"--checkpoint", dir / "ck.safetensors", "--sample-seed", "7", "--info"}), out7);
  OFAMobileNetV3 probe(10);
  PyRandom rng(7);
  EXPECT_EQ(out7.str().substr(0, out7.str().find('\n')), nn::subnet_json_line(probe.sample_active_subnet(rng), 224));
}

TEST(OfaEval, SubnetJsonParsing) {
  const auto s = nn::parse_subnet_json(seed_subnet_json(7, 160), "x");
  EXPECT_EQ(s.resolution, 160);
  EXPECT_EQ(s.setting.ks.size(), 20u);
  EXPECT_EQ(nn::subnet_json_line(s.setting, 160), seed_subnet_json(7, 160));
  EXPECT_EQ(nn::parse_subnet_json(R"({"ks": [3], "e": [4.0], "d": [2]})", "x").resolution, 0);
  EXPECT_TRUE(has(error_of([] { nn::parse_subnet_json("{\"ks\": [3], \"e\": [3]}", "f.json"); }), "lacks 'd'"));
  EXPECT_TRUE(has(error_of([] { nn::parse_subnet_json("{\"ks\": [3], \"e\": [3], \"d\": [2], \"w\": 1}", "f.json"); }),
                  "unknown key 'w'"));
  EXPECT_TRUE(has(error_of([] { nn::parse_subnet_json("[1, 2", "f.json"); }), "f.json: not valid JSON"));
  EXPECT_TRUE(has(error_of([] { nn::parse_subnet_json("{\"ks\": [3.5], \"e\": [3], \"d\": [2]}", "f.json"); }),
                  "'ks' must hold integers"));
}

TEST(OfaEval, ArgumentErrorsAreClear) {
  EXPECT_TRUE(has(error_of([] { args({"--tensors", "a", "--dump", "b"}); }), "--checkpoint CK.safetensors is required"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--info", "--export-subnet", "x"}); }), "exactly one of"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--info", "--subnet", "s", "--sample-seed", "3"}); }),
                  "exclude each other"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--tensors", "a", "--dump", "b", "--train-step"}); }),
                  "--train-step and --config RUN.yaml go together"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--tensors", "a", "--dump", "b", "--calib-tensors", "x"}); }),
                  "--calib-batch-size"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--info", "--frobnicate"}); }), "unknown argument '--frobnicate'"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--info", "--image-size", "12x"}); }), "must be an integer"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--tensors", "a"}); }), "--tensors and --dump go together"));
  EXPECT_TRUE(has(error_of([] { args({"--checkpoint", "c", "--info", "--device", "tpu"}); }), "cpu or cuda"));
  // A device that is not there (cuda:99 on any machine) names the remedies; a malformed one is named.
  const std::string missing =
      error_of([] { nn::run_ofa_eval(args({"--checkpoint", "c", "--info", "--device", "cuda:99"}), std::cout); });
  EXPECT_TRUE(has(missing, "ofa_eval --device: 'cuda:99' but ") && has(missing, "CUDA device") &&
              has(missing, "use --device cpu") && has(missing, "OFA_CUDA_EMULATION=1"))
      << missing;
  EXPECT_TRUE(has(error_of([] { nn::run_ofa_eval(args({"--checkpoint", "c", "--info", "--device", "cuda:x"}), std::cout); }),
                  "'cuda:x' is not a device"));
}

TEST(OfaEval, CheckpointErrorsAreClear) {
  TempDir dir;
  auto net = golden_net();
  // No metadata: say what is needed.
  nn::save_module_state(dir / "bare.safetensors", *net);
  EXPECT_TRUE(has(error_of([&] { nn::load_net_checkpoint(dir / "bare.safetensors"); }), "convert_pytorch_checkpoint.py"));
  // A missing tensor is named (strict loading).
  nn::NamedTensors sd = net->state_dict();
  sd.erase(sd.begin() + 3);
  const std::string gone = net->state_dict()[3].first;
  save_safetensors(dir / "short.safetensors", sd, nn::supernet_metadata(*net));
  const std::string e = error_of([&] { nn::load_net_checkpoint(dir / "short.safetensors"); });
  EXPECT_TRUE(has(e, "missing key '" + gone + "'")) << e;
  // A static checkpoint takes no --subnet; a supernet export needs one.
  auto sub = net->get_active_subnet();
  nn::save_static_checkpoint(dir / "static.safetensors", *sub);
  write_text(dir / "s.json", seed_subnet_json(3, 0));
  EXPECT_TRUE(has(error_of([&] {
                    nn::run_ofa_eval(args({"--checkpoint", dir / "static.safetensors", "--subnet", dir / "s.json", "--info"}),
                                     std::cout);
                  }),
                  "static subnet checkpoint"));
  nn::save_supernet_checkpoint(dir / "super.safetensors", *net);
  EXPECT_TRUE(has(error_of([&] {
                    nn::run_ofa_eval(args({"--checkpoint", dir / "super.safetensors", "--export-subnet", dir / "x.safetensors"}),
                                     std::cout);
                  }),
                  "needs --subnet"));
  // Inputs: wrong dtype / missing labels.
  save_safetensors(dir / "in64.safetensors", {{"images", zeros({1, 3, 32, 32}, DType::F64)}});
  EXPECT_TRUE(has(error_of([&] {
                    nn::run_ofa_eval(args({"--checkpoint", dir / "super.safetensors", "--tensors", dir / "in64.safetensors",
                                           "--dump", dir / "o.safetensors"}),
                                     std::cout);
                  }),
                  "must be float32"));
  save_safetensors(dir / "in.safetensors", {{"images", zeros({1, 3, 32, 32})}});
  write_text(dir / "run.yaml", "base_lr: 0.1\n");
  EXPECT_TRUE(has(error_of([&] {
                    nn::run_ofa_eval(args({"--checkpoint", dir / "super.safetensors", "--tensors", dir / "in.safetensors",
                                           "--dump", dir / "o.safetensors", "--train-step", "--config", dir / "run.yaml"}),
                                     std::cout);
                  }),
                  "'labels'"));
}

// ================================================================ the binary and the converter

std::string self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

int run_cmd(const std::string& cmd, std::string* output) {
  const std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string out;
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = pclose(p);
  if (output) *output = out;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(OfaEval, BuiltToolGivesTheLibrarysAnswers) {
  const fs::path tool = fs::path(self_dir()).parent_path() / "ofa_eval";  // build/tests/.. /ofa_eval
  if (!fs::exists(tool)) GTEST_SKIP() << "no ofa_eval binary next to the tests (" << tool << ")";
  SupernetFixture fx;
  save_safetensors(fx.dir / "in.safetensors", {{"images", golden_input(2, 37)}});
  std::string out;
  ASSERT_EQ(run_cmd(tool.string() + " --checkpoint " + fx.ck + " --sample-seed 11 --tensors " + (fx.dir / "in.safetensors") +
                        " --dump " + (fx.dir / "out.safetensors"),
                    &out),
            0)
      << out;
  auto net = golden_net();
  PyRandom rng(11);
  net->sample_active_subnet(rng);
  EXPECT_TRUE(all_close(load_safetensors(fx.dir / "out.safetensors").at("logits"),
                        nn::eval_logits(NetCheckpoint{"", {}, net, nullptr}, golden_input(2, 37)), 0, 0));
  ASSERT_EQ(run_cmd(tool.string() + " --checkpoint " + fx.ck + " --sample-seed 11 --info --image-size 160", &out), 0) << out;
  EXPECT_EQ(out.substr(0, out.find('\n')), seed_subnet_json(11, 160));
  EXPECT_TRUE(has(out, "params ")) << out;
  EXPECT_EQ(run_cmd(tool.string() + " --checkpoint " + fx.ck + " --info --device cuda:99", &out), 1);
  EXPECT_TRUE(has(out, "error: ") && has(out, "'cuda:99' but")) << out;
  EXPECT_EQ(run_cmd(tool.string() + " --bogus", &out), 1);
  EXPECT_TRUE(has(out, "unknown argument '--bogus'")) << out;
}

bool have_torch() {
  static const bool ok = run_cmd("/usr/bin/python3 -c 'import torch'", nullptr) == 0;
  return ok;
}

TEST(Convert, ReferenceCheckpointsLoadStrictlyWithEveryValue) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  TempDir dir;
  const std::string data = OFA_TEST_DATA_DIR;
  const std::string conv = data + "/../../tools/convert_pytorch_checkpoint.py";
  std::string out;
  ASSERT_EQ(run_cmd("/usr/bin/python3 " + data + "/make_ofa_eval_golden.py --convert-case " + dir.path.string(), &out), 0)
      << out;
  ASSERT_EQ(run_cmd("/usr/bin/python3 " + conv + " " + (dir / "super.pth") + " " + (dir / "super.safetensors") +
                        " --net ofa_mbv3_d234_e346_k357_w1.0",
                    &out),
            0)
      << out;
  // Supernet: "module." prefix and ".mobile_inverted_conv." names converted, every value kept.
  const SafetensorsFile sf = load_safetensors(dir / "super.safetensors");
  EXPECT_EQ(sf.metadata.at("format"), "OFAMobileNetV3");
  EXPECT_EQ(sf.metadata.at("n_classes"), "10");
  EXPECT_TRUE(sf.contains("blocks.3.conv.depth_conv.conv.7to5_matrix"));
  const NetCheckpoint ck = nn::load_net_checkpoint(dir / "super.safetensors");
  ASSERT_TRUE(ck.is_supernet());
  EXPECT_EQ(ck.supernet->ks_list, (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(ck.supernet->depth_list, (std::vector<int64_t>{2, 3, 4}));
  auto ref = golden_net();
  auto mine = by_name(ck.supernet->state_dict());
  ASSERT_EQ(mine.size(), ref->state_dict().size());
  for (auto& [k, t] : ref->state_dict()) EXPECT_TRUE(all_close(mine.at(k), t, 0, 0)) << k;

  // Static subnet with its net config.
  ASSERT_EQ(run_cmd("/usr/bin/python3 " + conv + " " + (dir / "static.pth") + " " + (dir / "static.safetensors") +
                        " --net-config " + (dir / "static.config"),
                    &out),
            0)
      << out;
  const NetCheckpoint st = nn::load_net_checkpoint(dir / "static.safetensors");
  ASSERT_FALSE(st.is_supernet());
  auto expect = nn::MobileNetV3::build_from_config(st.static_net->config());
  golden_init(*expect);
  auto smine = by_name(st.static_net->state_dict());
  for (auto& [k, t] : expect->state_dict()) EXPECT_TRUE(all_close(smine.at(k), t, 0, 0)) << k;

  // Bad ids and mismatched configs are refused by name.
  EXPECT_NE(run_cmd("/usr/bin/python3 " + conv + " " + (dir / "super.pth") + " " + (dir / "x.safetensors") +
                        " --net ofa_resnet50",
                    &out),
            0);
  EXPECT_TRUE(has(out, "not an OFA-MobileNetV3 model-zoo id")) << out;
}

}  // namespace
}  // namespace ofa::test
