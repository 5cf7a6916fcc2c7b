// Replays tests/data/small_net_golden.txt (made by make_small_net_golden.py
// with PyTorch in float64): the same small network built from the engine's
// ops must give the same logits, loss, running statistics and gradients.
#include <fstream>
#include <map>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

struct Golden {
  std::map<std::string, Tensor> t;
  const Tensor& operator[](const std::string& k) const {
    auto it = t.find(k);
    if (it == t.end()) throw Error("golden file has no entry " + k);
    return it->second;
  }
};

Golden load_golden() {
  const std::string path = std::string(OFA_TEST_DATA_DIR) + "/small_net_golden.txt";
  std::ifstream f(path);
  if (!f) throw Error("cannot open " + path + " (run tests/data/make_small_net_golden.py)");
  Golden g;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string name;
    int64_t nd;
    is >> name >> nd;
    Shape shape(nd);
    int64_t n = 1;
    for (auto& d : shape) is >> d, n *= d;
    std::vector<double> v(n);
    for (auto& x : v) is >> x;
    if (!is) throw Error("malformed golden entry " + name + " in " + path);
    g.t[name] = from_vector<double>(v, shape);
  }
  return g;
}

struct Net {
  std::map<std::string, Tensor> p, b;  // parameters (leaves), running statistics
};

Net make_net(const Golden& g, DType dt) {
  Net n;
  for (auto& [k, v] : g.t) {
    if (k.rfind("in.", 0) != 0) continue;
    std::string name = k.substr(3);
    if (name == "x" || name == "target" || name == "teacher_logits") continue;
    Tensor t = v.to(dt);
    if (name.find("running_") != std::string::npos) n.b[name] = t;
    else n.p[name] = t.set_requires_grad(true);
  }
  return n;
}

// The network of make_small_net_golden.py, op for op.
std::pair<Tensor, Tensor> forward(Net& n, const Golden& g, DType dt) {
  auto bn = [&](const Tensor& h, const std::string& name, int64_t C) {
    return batch_norm(h, n.p[name + ".weight"].narrow(0, 0, C), n.p[name + ".bias"].narrow(0, 0, C),
                      n.b[name + ".running_mean"].narrow(0, 0, C), n.b[name + ".running_var"].narrow(0, 0, C),
                      true, 0.1, 1e-5);
  };
  Tensor x = g["in.x"].to(dt);
  Tensor h = conv2d(x, n.p["conv1.weight"], Tensor(), {{2, 2}, {1, 1}, 1});
  h = hswish(bn(h, "bn1", 8));
  h = conv2d(h, n.p["pw_full.weight"].narrow(0, 0, 16).narrow(1, 0, 8), Tensor(), {});
  h = relu6(bn(h, "bn2_full", 16));
  h = depthwise_conv2d(h, n.p["dw_full.weight"].narrow(0, 0, 16).narrow(2, 1, 5).narrow(3, 1, 5), 2);
  h = relu(bn(h, "bn3_full", 16));
  Tensor s = global_avg_pool2d(h).flatten(1);
  s = relu(linear(s, n.p["se_reduce.weight"], n.p["se_reduce.bias"]));
  s = hsigmoid(linear(s, n.p["se_expand.weight"], n.p["se_expand.bias"]));
  h = mul(h, s.reshape({s.size(0), s.size(1), 1, 1}));
  h = bn(conv2d(h, n.p["pl.weight"], Tensor(), {}), "bn4", 8);
  h = add(h, conv2d(h, n.p["res.weight"], Tensor(), {}));
  Tensor feat = global_avg_pool2d(h).flatten(1);
  Tensor logits = linear(feat, n.p["fc.weight"], n.p["fc.bias"]);
  Tensor target = g["in.target"].to(DType::I64);
  Tensor soft = softmax(g["in.teacher_logits"].to(dt), 1);
  Tensor loss = add(cross_entropy(logits, target, 0.1), cross_entropy_soft(logits, soft));
  return {logits, loss};
}

void check_all(DType dt, double atol, double rtol) {
  Golden g = load_golden();
  Net n = make_net(g, dt);
  auto [logits, loss] = forward(n, g, dt);
  loss.backward();
  EXPECT_TRUE(all_close(logits, g["out.logits"], atol, rtol)) << "logits";
  EXPECT_TRUE(all_close(loss, g["out.loss"], atol, rtol)) << "loss";
  for (auto& [name, t] : n.b) EXPECT_TRUE(all_close(t, g["after." + name], atol, rtol)) << name;
  for (auto& [name, t] : n.p) {
    ASSERT_TRUE(t.grad().defined()) << name << " got no gradient";
    EXPECT_TRUE(all_close(t.grad(), g["grad." + name], atol, rtol)) << "gradient of " << name;
  }
}

TEST(GoldenSmallNet, Float64MatchesPyTorch) { check_all(DType::F64, 1e-10, 1e-8); }

TEST(GoldenSmallNet, Float32MatchesPyTorch) { check_all(DType::F32, 2e-5, 2e-4); }

TEST(GoldenSmallNet, GradientsOutsideTheActiveSlicesAreZero) {
  Golden g = load_golden();
  Net n = make_net(g, DType::F64);
  forward(n, g, DType::F64).second.backward();
  std::vector<double> gdw = n.p["dw_full.weight"].grad().to_vector<double>();
  for (int c = 0; c < 20; ++c)
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 7; ++j)
        if (c >= 16 || i < 1 || i > 5 || j < 1 || j > 5) ASSERT_EQ(gdw[c * 49 + i * 7 + j], 0.0) << c << " " << i << " " << j;
  std::vector<double> gbn = n.p["bn2_full.weight"].grad().to_vector<double>();
  for (int c = 16; c < 20; ++c) EXPECT_EQ(gbn[c], 0.0);
  // Running statistics beyond the active channels are untouched.
  EXPECT_TRUE(all_close(n.b["bn3_full.running_mean"].narrow(0, 16, 4), g["in.bn3_full.running_mean"].narrow(0, 16, 4), 0, 0));
}

}  // namespace
