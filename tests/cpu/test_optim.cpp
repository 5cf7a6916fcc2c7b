// SGD and Adam: against naive loops, against PyTorch trajectories (golden
// file from tests/data/make_optim_golden.py), state save/load, groups, errors.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "nn/optim.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::nn;
using namespace ofa::test;

namespace {

// Odd sizes; one channels-last 4-D parameter (its grads and buffers follow
// its layout) and one large enough for the OpenMP path.
NamedTensors make_params(DType dt, bool large = false) {
  NamedTensors ps;
  ps.emplace_back("fc.weight", randn_t({13, 7}, 11, dt));
  ps.emplace_back("conv.weight", randn_t({3, 5, 3, 3}, 12, dt).contiguous(MemoryFormat::ChannelsLast));
  ps.emplace_back("fc.bias", randn_t({13}, 13, dt));
  if (large) ps.emplace_back("big.weight", randn_t({70001}, 14, dt));
  for (auto& kv : ps) kv.second.set_requires_grad(true);
  return ps;
}

Tensor grad_for(const Tensor& p, uint64_t seed) { return randn_t(p.shape(), seed, p.dtype()); }

// Sets .grad of every parameter for step `k` (same values in every run).
void set_grads(const NamedTensors& ps, int k) {
  for (size_t i = 0; i < ps.size(); ++i) {
    Tensor p = ps[i].second;  // a handle: set_grad is not const
    p.set_grad(grad_for(p, 1000 * k + i));
  }
}

NamedTensors clone_all(const NamedTensors& ps) {
  NamedTensors out;
  for (const auto& kv : ps) {
    Tensor c = kv.second.detach().clone(kv.second.suggest_memory_format());
    if (kv.second.requires_grad()) c.set_requires_grad(true);
    out.emplace_back(kv.first, c);
  }
  return out;
}

// ---------------------------------------------------------------- naive references

struct NaiveSGD {
  double lr, momentum, dampening, wd;
  bool nesterov;
  std::map<std::string, std::vector<double>> buf;
  void step(const std::string& name, std::vector<double>& p, const std::vector<double>& g) {
    auto& b = buf[name];
    const bool first = b.empty();
    if (first) b.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + wd * p[i];
      if (momentum != 0) {
        b[i] = first ? d : momentum * b[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * b[i] : b[i];
      }
      p[i] -= lr * d;
    }
  }
};

struct NaiveAdam {
  double lr, beta1, beta2, eps, wd;
  std::map<std::string, std::vector<double>> m, v;
  std::map<std::string, int> t;
  void step(const std::string& name, std::vector<double>& p, const std::vector<double>& g_in) {
    auto& mm = m[name];
    auto& vv = v[name];
    if (mm.empty()) mm.assign(p.size(), 0.0), vv.assign(p.size(), 0.0);
    const int k = ++t[name];
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = g_in[i] + wd * p[i];
      mm[i] = beta1 * mm[i] + (1 - beta1) * g;
      vv[i] = beta2 * vv[i] + (1 - beta2) * g * g;
      const double mhat = mm[i] / (1 - std::pow(beta1, k));
      const double vhat = vv[i] / (1 - std::pow(beta2, k));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

// Runs `steps` steps of `opt` and of `naive` on the same grads; compares after each.
// Parameters are O(1) and an update can cancel them to near 0, so the bound
// has an absolute part at the scale of the inputs' rounding.
template <class Naive>
void run_against_naive(Optimizer& opt, Naive& naive, const NamedTensors& ps, int steps, double atol, double rtol) {
  std::map<std::string, std::vector<double>> ref;
  for (const auto& kv : ps) ref[kv.first] = kv.second.to_vector<double>();
  for (int k = 1; k <= steps; ++k) {
    set_grads(ps, k);
    opt.step();
    for (const auto& kv : ps) {
      const Tensor& p = kv.second;
      naive.step(kv.first, ref[kv.first], p.grad().to_vector<double>());
      EXPECT_TRUE(all_close(p, ref[kv.first], atol, rtol)) << kv.first << " after step " << k;
    }
  }
}

// ---------------------------------------------------------------- SGD vs naive

using SgdCase = std::tuple<double, bool, double, double>;  // momentum, nesterov, weight decay, dampening

class SGDGrid : public ::testing::TestWithParam<SgdCase> {};

TEST_P(SGDGrid, MatchesNaiveFloat64) {
  auto [momentum, nesterov, wd, dampening] = GetParam();
  NamedTensors ps = make_params(DType::F64, /*large=*/true);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.1;
  g.momentum = momentum;
  g.nesterov = nesterov;
  g.weight_decay = wd;
  g.dampening = dampening;
  SGD opt({g});
  NaiveSGD naive{0.1, momentum, dampening, wd, nesterov, {}};
  run_against_naive(opt, naive, ps, 3, 1e-15, 1e-14);
}

TEST_P(SGDGrid, MatchesNaiveFloat32) {
  auto [momentum, nesterov, wd, dampening] = GetParam();
  NamedTensors ps = make_params(DType::F32);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.1;
  g.momentum = momentum;
  g.nesterov = nesterov;
  g.weight_decay = wd;
  g.dampening = dampening;
  SGD opt({g});
  NaiveSGD naive{0.1, momentum, dampening, wd, nesterov, {}};
  run_against_naive(opt, naive, ps, 3, 1e-6, 1e-5);
}

// nesterov needs momentum and no dampening (PyTorch refuses the rest).
INSTANTIATE_TEST_SUITE_P(Optim, SGDGrid,
                         ::testing::Values(SgdCase{0.0, false, 0.0, 0.0}, SgdCase{0.0, false, 3e-5, 0.0},
                                           SgdCase{0.9, false, 0.0, 0.0}, SgdCase{0.9, false, 3e-5, 0.0},
                                           SgdCase{0.9, false, 0.0, 0.1}, SgdCase{0.9, false, 3e-5, 0.1},
                                           SgdCase{0.9, true, 0.0, 0.0}, SgdCase{0.9, true, 3e-5, 0.0}));

TEST(SGD, RefusesNesterovWithoutMomentumOrWithDampening) {
  ParamGroup g;
  g.params = make_params(DType::F64);
  g.lr = 0.1;
  g.nesterov = true;
  EXPECT_NE(error_of([&] { SGD o({g}); }).find("nesterov needs momentum > 0 and dampening 0"), std::string::npos);
  g.momentum = 0.9;
  g.dampening = 0.1;
  EXPECT_NE(error_of([&] { SGD o({g}); }).find("dampening 0.1"), std::string::npos);
}

TEST(SGD, GradLaidOutDifferentlyFromParameter) {
  // A channels-last parameter with a row-major gradient (set by hand).
  Tensor p = randn_t({3, 5, 3, 3}, 1).contiguous(MemoryFormat::ChannelsLast).set_requires_grad(true);
  Tensor g = randn_t({3, 5, 3, 3}, 2);
  p.set_grad(g);
  ParamGroup grp;
  grp.params = {{"w", p}};
  grp.lr = 0.5;
  grp.momentum = 0.9;
  SGD opt({grp});
  std::vector<double> want = p.to_vector<double>(), gv = g.to_vector<double>();
  opt.step();
  for (size_t i = 0; i < want.size(); ++i) want[i] -= 0.5 * gv[i];
  EXPECT_TRUE(all_close(p, want, 0, 1e-15));
  EXPECT_TRUE(p.is_contiguous(MemoryFormat::ChannelsLast));
}

TEST(SGD, SkipsParametersWithoutGrad) {
  NamedTensors ps = make_params(DType::F64);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.1;
  g.momentum = 0.9;
  SGD opt({g});
  ps[0].second.set_grad(grad_for(ps[0].second, 5));
  auto before1 = ps[1].second.to_vector<double>();
  opt.step();
  EXPECT_EQ(ps[1].second.to_vector<double>(), before1);
  auto sd = opt.state_dict();
  ASSERT_EQ(sd.size(), 1u);  // only the parameter that had a gradient has state
  EXPECT_EQ(sd[0].first, "momentum_buffer.fc.weight");
}

TEST(SGD, SetLrAppliesToEveryGroup) {
  NamedTensors ps = make_params(DType::F64);
  ParamGroup a, b;
  a.params = {ps[0]};
  b.params = {ps[1]};
  a.lr = 0.1;
  b.lr = 0.2;
  SGD opt({a, b});
  opt.set_lr(0.03);
  for (const auto& grp : opt.param_groups()) EXPECT_EQ(grp.lr, 0.03);
  NaiveSGD naive{0.03, 0, 0, 0, false, {}};
  NamedTensors used = {ps[0], ps[1]};
  run_against_naive(opt, naive, used, 1, 0, 1e-15);
  EXPECT_NE(error_of([&] { opt.set_lr(-1); }).find("lr must be finite and >= 0"), std::string::npos);
}

TEST(Optim, ZeroGradZeroesInPlace) {
  NamedTensors ps = make_params(DType::F64);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.1;
  SGD opt({g});
  set_grads(ps, 1);
  Tensor grad0 = ps[0].second.grad();
  opt.zero_grad();
  EXPECT_EQ(ps[0].second.grad().impl(), grad0.impl());
  EXPECT_TRUE(all_close(grad0, zeros(grad0.shape(), DType::F64), 0, 0));
}

// ---------------------------------------------------------------- Adam vs naive

using AdamCase = std::tuple<double, double, double, double>;  // beta1, beta2, eps, weight decay

class AdamGrid : public ::testing::TestWithParam<AdamCase> {};

TEST_P(AdamGrid, MatchesNaiveFloat64) {
  auto [b1, b2, eps, wd] = GetParam();
  NamedTensors ps = make_params(DType::F64, /*large=*/true);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.01;
  g.beta1 = b1;
  g.beta2 = b2;
  g.eps = eps;
  g.weight_decay = wd;
  Adam opt({g});
  NaiveAdam naive{0.01, b1, b2, eps, wd, {}, {}, {}};
  // The textbook form rounds differently from torch's; only by a few ulps.
  run_against_naive(opt, naive, ps, 3, 1e-15, 1e-13);
}

TEST_P(AdamGrid, MatchesNaiveFloat32) {
  auto [b1, b2, eps, wd] = GetParam();
  NamedTensors ps = make_params(DType::F32);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.01;
  g.beta1 = b1;
  g.beta2 = b2;
  g.eps = eps;
  g.weight_decay = wd;
  Adam opt({g});
  NaiveAdam naive{0.01, b1, b2, eps, wd, {}, {}, {}};
  run_against_naive(opt, naive, ps, 3, 1e-6, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Optim, AdamGrid,
                         ::testing::Values(AdamCase{0.9, 0.999, 1e-8, 0.0}, AdamCase{0.9, 0.999, 1e-8, 1e-2},
                                           AdamCase{0.8, 0.99, 1e-3, 0.0}, AdamCase{0.5, 0.9, 1e-3, 3e-5}));

TEST(Adam, StepCountIsPerParameter) {
  // A parameter that misses a step gets its own (smaller) bias correction.
  NamedTensors ps = make_params(DType::F64);
  ParamGroup g;
  g.params = ps;
  g.lr = 0.01;
  Adam opt({g});
  NaiveAdam naive{0.01, 0.9, 0.999, 1e-8, 0.0, {}, {}, {}};
  std::map<std::string, std::vector<double>> ref;
  for (const auto& kv : ps) ref[kv.first] = kv.second.to_vector<double>();
  for (int k = 1; k <= 3; ++k) {
    set_grads(ps, k);
    if (k == 1) ps[2].second.set_grad(Tensor());
    opt.step();
    for (const auto& [n, p] : ps) {
      if (!p.grad().defined()) continue;
      naive.step(n, ref[n], p.grad().to_vector<double>());
    }
    for (const auto& [n, p] : ps) EXPECT_TRUE(all_close(p, ref[n], 1e-15, 1e-13)) << n << " step " << k;
  }
  for (const auto& [k, t] : opt.state_dict())
    if (k.rfind("step.", 0) == 0) EXPECT_EQ(t.item(), k == "step.fc.bias" ? 2.0 : 3.0) << k;
}

// ---------------------------------------------------------------- groups

TEST(Optim, NoDecayGroupsSplitByNameKeys) {
  NamedTensors ps;
  for (const char* n : {"first_conv.conv.weight", "first_conv.bn.weight", "first_conv.bn.bias",
                        "blocks.1.mobile_inverted_conv.depth_conv.bn.running_x", "classifier.linear.weight",
                        "classifier.linear.bias"})
    ps.emplace_back(n, randn_t({2}, 1).set_requires_grad(true));
  ParamGroup hyper;
  hyper.lr = 0.1;
  hyper.momentum = 0.9;
  hyper.nesterov = true;
  hyper.weight_decay = 3e-5;
  auto groups = make_param_groups(ps, {"bn", "bias"}, hyper);
  ASSERT_EQ(groups.size(), 2u);
  auto names = [](const ParamGroup& g) {
    std::vector<std::string> out;
    for (const auto& kv : g.params) out.push_back(kv.first);
    return out;
  };
  EXPECT_EQ(names(groups[0]), (std::vector<std::string>{"first_conv.conv.weight", "classifier.linear.weight"}));
  EXPECT_EQ(names(groups[1]),
            (std::vector<std::string>{"first_conv.bn.weight", "first_conv.bn.bias",
                                      "blocks.1.mobile_inverted_conv.depth_conv.bn.running_x", "classifier.linear.bias"}));
  EXPECT_EQ(groups[0].weight_decay, 3e-5);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  for (const auto& g : groups) {
    EXPECT_EQ(g.lr, 0.1);
    EXPECT_EQ(g.momentum, 0.9);
    EXPECT_TRUE(g.nesterov);
  }
  auto one = make_param_groups(ps, {}, hyper);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].params.size(), ps.size());
  EXPECT_EQ(one[0].weight_decay, 3e-5);
}

TEST(Optim, NoDecayGroupGetsNoWeightDecay) {
  // Zero gradient: only weight decay moves a parameter.
  NamedTensors ps = {{"conv.weight", randn_t({5}, 1).set_requires_grad(true)},
                     {"bn.weight", randn_t({5}, 2).set_requires_grad(true)}};
  ParamGroup hyper;
  hyper.lr = 0.1;
  hyper.weight_decay = 0.5;
  SGD opt(make_param_groups(ps, {"bn", "bias"}, hyper));
  auto w0 = ps[0].second.to_vector<double>(), b0 = ps[1].second.to_vector<double>();
  for (auto& kv : ps) kv.second.set_grad(zeros({5}, DType::F64));
  opt.step();
  for (auto& v : w0) v -= 0.1 * 0.5 * v;
  EXPECT_TRUE(all_close(ps[0].second, w0, 0, 1e-15));
  EXPECT_EQ(ps[1].second.to_vector<double>(), b0);
}

// ---------------------------------------------------------------- golden (PyTorch 1.13)

struct GoldenConfig {
  std::string kind;
  std::vector<ParamGroup> groups;
  std::map<std::string, Tensor> params;
  std::map<int, double> lr;
  std::map<int, std::vector<std::pair<std::string, std::vector<double>>>> grads, after;
};

std::vector<double> read_values(std::istringstream& in, int64_t n) {
  std::vector<double> v(n);
  for (auto& x : v) {
    std::string tok;
    in >> tok;
    x = std::stod(tok);  // repr() output round-trips exactly
  }
  return v;
}

std::map<std::string, GoldenConfig> read_golden() {
  std::ifstream f(OFA_TEST_DATA_DIR "/optim_golden.txt");
  OFA_CHECK(f.good(), "cannot open ", OFA_TEST_DATA_DIR "/optim_golden.txt; run tests/data/make_optim_golden.py");
  std::map<std::string, GoldenConfig> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string tag, cfg;
    in >> tag >> cfg;
    GoldenConfig& c = out[cfg];
    if (tag == "config") {
      in >> c.kind;
    } else if (tag == "group") {
      size_t gi;
      int nesterov;
      ParamGroup g;
      in >> gi >> g.lr >> g.momentum >> g.dampening >> nesterov >> g.weight_decay >> g.beta1 >> g.beta2 >> g.eps;
      g.nesterov = nesterov != 0;
      OFA_CHECK(gi == c.groups.size(), "golden: groups out of order");
      c.groups.push_back(g);
    } else if (tag == "param") {
      size_t gi;
      std::string name;
      int64_t ndim;
      in >> gi >> name >> ndim;
      Shape s(ndim);
      int64_t n = 1;
      for (auto& d : s) in >> d, n *= d;
      Tensor p = from_vector<double>(read_values(in, n), s).set_requires_grad(true);
      c.groups.at(gi).params.emplace_back(name, p);
      c.params[name] = p;
    } else if (tag == "lr") {
      int k;
      in >> k;
      in >> c.lr[k];
    } else if (tag == "grad" || tag == "after") {
      int k;
      std::string name;
      int64_t n;
      in >> k >> name >> n;
      (tag == "grad" ? c.grads : c.after)[k].emplace_back(name, read_values(in, n));
    } else {
      OFA_CHECK(false, "golden: unknown record '", tag, "'");
    }
    OFA_CHECK(!in.fail(), "golden: cannot parse line: ", line);
  }
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesPyTorchFloat64) {
  auto all = read_golden();
  ASSERT_EQ(all.size(), 3u);
  ASSERT_TRUE(all.count(GetParam()));
  GoldenConfig& c = all[GetParam()];
  std::unique_ptr<Optimizer> opt;
  if (c.kind == "sgd") {
    opt = std::make_unique<SGD>(c.groups);
  } else {
    ASSERT_EQ(c.kind, "adam");
    opt = std::make_unique<Adam>(c.groups);
  }
  ASSERT_EQ(c.after.size(), 4u);
  int compared = 0;
  for (const auto& [k, grads] : c.grads) {
    if (c.lr.count(k)) opt->set_lr(c.lr[k]);
    for (const auto& [n, g] : grads) {
      Tensor& p = c.params.at(n);
      p.set_grad(g.empty() ? Tensor() : from_vector<double>(g, p.shape()));
    }
    opt->step();
    for (const auto& [n, want] : c.after.at(k)) {
      EXPECT_TRUE(all_close(c.params.at(n), want, 0, 1e-12)) << GetParam() << " " << n << " after step " << k;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 16);
}

INSTANTIATE_TEST_SUITE_P(Optim, Golden, ::testing::Values("sgd_nesterov", "sgd_dampening", "adam"),
                         [](const auto& info) { return info.param; });

TEST(Optim, GoldenGroupsAreTheNoDecaySplit) {
  // The OFA recipe's groups, built by make_param_groups, are the ones PyTorch ran.
  auto all = read_golden();
  GoldenConfig& c = all.at("sgd_nesterov");
  NamedTensors ps;
  for (const char* n : {"conv.weight", "fc.weight", "bn.weight", "fc.bias"}) ps.emplace_back(n, c.params.at(n));
  ParamGroup hyper = c.groups[0];
  auto groups = make_param_groups(ps, {"bn", "bias"}, hyper);
  ASSERT_EQ(groups.size(), c.groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    EXPECT_EQ(groups[i].weight_decay, c.groups[i].weight_decay);
    ASSERT_EQ(groups[i].params.size(), c.groups[i].params.size());
    for (size_t j = 0; j < groups[i].params.size(); ++j)
      EXPECT_EQ(groups[i].params[j].first, c.groups[i].params[j].first);
  }
}

// ---------------------------------------------------------------- state save / load

std::unique_ptr<Optimizer> make_opt(const std::string& kind, const NamedTensors& ps) {
  ParamGroup hyper;
  hyper.lr = kind == "sgd" ? 0.1 : 0.01;
  hyper.momentum = 0.9;
  hyper.nesterov = true;
  hyper.weight_decay = 3e-5;
  auto groups = make_param_groups(ps, {"bn", "bias"}, hyper);
  if (kind == "sgd") return std::make_unique<SGD>(groups);
  return std::make_unique<Adam>(groups);
}

class StateRoundTrip : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(StateRoundTrip, ResumeIsBitIdentical) {
  auto [kind, dt] = GetParam();
  NamedTensors ps = make_params(dt);
  auto opt = make_opt(kind, ps);
  for (int k = 1; k <= 2; ++k) set_grads(ps, k), opt->step();
  NamedTensors saved_params = clone_all(ps);
  NamedTensors saved_state = clone_all(opt->state_dict());
  for (int k = 3; k <= 4; ++k) set_grads(ps, k), opt->step();

  NamedTensors ps2 = clone_all(saved_params);
  auto opt2 = make_opt(kind, ps2);
  opt2->load_state_dict(saved_state);
  for (int k = 3; k <= 4; ++k) set_grads(ps2, k), opt2->step();
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_EQ(ps[i].second.to_vector<double>(), ps2[i].second.to_vector<double>()) << ps[i].first;
  // The restored state went on exactly as the original.
  auto s1 = opt->state_dict(), s2 = opt2->state_dict();
  ASSERT_EQ(s1.size(), s2.size());
  for (size_t i = 0; i < s1.size(); ++i) {
    EXPECT_EQ(s1[i].first, s2[i].first);
    EXPECT_EQ(s1[i].second.to_vector<double>(), s2[i].second.to_vector<double>()) << s1[i].first;
  }
}

INSTANTIATE_TEST_SUITE_P(Optim, StateRoundTrip,
                         ::testing::Combine(::testing::Values("sgd", "adam"), ::testing::Values(DType::F32, DType::F64)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + dtype_name(std::get<1>(info.param));
                         });

TEST(Optim, StateDictKeys) {
  NamedTensors ps = make_params(DType::F64);
  auto sgd = make_opt("sgd", ps);
  set_grads(ps, 1);
  sgd->step();
  // Group order (decay group first), then parameter order.
  EXPECT_EQ(sgd->state_dict().size(), 3u);
  EXPECT_EQ(sgd->state_dict()[0].first, "momentum_buffer.fc.weight");
  EXPECT_EQ(sgd->state_dict()[1].first, "momentum_buffer.conv.weight");
  EXPECT_EQ(sgd->state_dict()[2].first, "momentum_buffer.fc.bias");
  auto adam = make_opt("adam", ps);
  adam->step();
  adam->step();
  std::vector<std::string> want = {"exp_avg.fc.weight",   "exp_avg_sq.fc.weight",   "step.fc.weight",
                                   "exp_avg.conv.weight", "exp_avg_sq.conv.weight", "step.conv.weight",
                                   "exp_avg.fc.bias",     "exp_avg_sq.fc.bias",     "step.fc.bias"};
  auto sd = adam->state_dict();
  ASSERT_EQ(sd.size(), want.size());
  for (size_t i = 0; i < sd.size(); ++i) EXPECT_EQ(sd[i].first, want[i]);
  EXPECT_EQ(sd[2].second.dtype(), DType::I64);
  EXPECT_EQ(sd[2].second.item(), 2.0);
  EXPECT_EQ(sd[1].second.shape(), ps[0].second.shape());
}

TEST(Optim, LoadStateListsEveryProblemAndLoadsNothing) {
  NamedTensors ps = make_params(DType::F64);
  auto adam = make_opt("adam", ps);
  set_grads(ps, 1);
  adam->step();
  NamedTensors good = clone_all(adam->state_dict());
  NamedTensors bad;
  for (const auto& kv : good) {
    if (kv.first == "exp_avg_sq.conv.weight") continue;  // missing
    if (kv.first == "exp_avg.fc.bias") {
      bad.emplace_back(kv.first, randn_t({12}, 1));  // mis-shaped
      continue;
    }
    bad.push_back(kv);
  }
  bad.emplace_back("exp_avg.classifier.weight", randn_t({2}, 2));  // no such parameter
  bad.emplace_back("momentum_buffer.fc.weight", randn_t({13, 7}, 3));  // not an Adam kind
  auto before = clone_all(adam->state_dict());
  std::string msg = error_of([&] { adam->load_state_dict(bad); });
  EXPECT_NE(msg.find("4 problem(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing key 'exp_avg_sq.conv.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("size mismatch for 'exp_avg.fc.bias'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[12]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected key 'exp_avg.classifier.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected key 'momentum_buffer.fc.weight'"), std::string::npos) << msg;
  auto after = adam->state_dict();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i].second.to_vector<double>(), before[i].second.to_vector<double>()) << after[i].first;
}

TEST(Optim, LoadStateRejectsBadStepAndDuplicates) {
  NamedTensors ps = make_params(DType::F64);
  auto adam = make_opt("adam", ps);
  set_grads(ps, 1);
  adam->step();
  NamedTensors st = clone_all(adam->state_dict());
  st[2].second = scalar_tensor(0, DType::I64);  // step.fc.weight
  st.push_back(st[0]);
  std::string msg = error_of([&] { adam->load_state_dict(st); });
  EXPECT_NE(msg.find("'step.fc.weight' must hold one integer step count >= 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("duplicate key 'exp_avg.fc.weight'"), std::string::npos) << msg;
}

TEST(Optim, ConstructorErrorsNameTheParameter) {
  Tensor a = randn_t({3}, 1).set_requires_grad(true);
  ParamGroup g;
  g.lr = 0.1;
  g.params = {{"a", a}, {"a", randn_t({3}, 2)}};
  EXPECT_NE(error_of([&] { SGD o({g}); }).find("parameter name 'a' appears twice"), std::string::npos);
  g.params = {{"a", a}, {"b", a}};
  EXPECT_NE(error_of([&] { SGD o({g}); }).find("'b' is the same tensor"), std::string::npos);
  Tensor full = randn_t({4, 5}, 3);
  g.params = {{"slice", full.narrow(1, 0, 2)}};
  EXPECT_NE(error_of([&] { SGD o({g}); }).find("'slice' with shape [4, 2]"), std::string::npos);
  ParamGroup unset;
  unset.params = {{"a", a}};
  EXPECT_NE(error_of([&] { Adam o({unset}); }).find("lr must be set"), std::string::npos);
  EXPECT_NE(error_of([&] { SGD o(std::vector<ParamGroup>{}); }).find("no parameter groups"), std::string::npos);
}

TEST(Optim, StepRejectsMisShapedGrad) {
  Tensor a = randn_t({3}, 1).set_requires_grad(true);
  ParamGroup g;
  g.lr = 0.1;
  g.params = {{"layer.w", a}};
  SGD opt({g});
  a.set_grad(randn_t({4}, 2));
  EXPECT_NE(error_of([&] { opt.step(); }).find("gradient of 'layer.w' has shape [4]"), std::string::npos);
}

}  // namespace
