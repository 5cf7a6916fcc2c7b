// Shared by test_ofa_mbv3.cpp and test_mobilenet_v3.cpp: the deterministic
// initialisation of tests/data/make_ofa_golden.py (every parameter and buffer
// from its name and flat index, rounded to float32) and a reader for
// tests/data/ofa_golden.txt.
#pragma once
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "nn/module.h"

namespace ofa::test {

// splitmix64 of (crc32(name) << 32) + i, top 53 bits -> [0, 1): u01 of the script.
inline std::vector<double> golden_u01(const std::string& name, int64_t n) {
  const uint64_t s = crc32(0L, reinterpret_cast<const Bytef*>(name.data()), static_cast<uInt>(name.size()));
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (s << 32) + static_cast<uint64_t>(i);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    out[static_cast<size_t>(i)] = static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  return out;
}

inline bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// init_value of the script (float32-rounded), by name and shape.
inline std::vector<float> golden_init_value(const std::string& name, const Shape& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  const auto u = golden_u01(name, n);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double x = u[static_cast<size_t>(i)];
    double r;
    if (ends_with(name, "running_mean")) {
      r = 0.2 * (x - 0.5);
    } else if (ends_with(name, "running_var")) {
      r = 0.5 + x;
    } else if (ends_with(name, "_matrix")) {
      const int64_t k = shape[0];
      r = ((i / k) == (i % k) ? 1.0 : 0.0) + 0.2 * (x - 0.5);
    } else if (shape.size() == 1) {
      r = name.find("bn.") != std::string::npos && ends_with(name, "weight") ? 1.0 + 0.4 * (x - 0.5) : 0.2 * (x - 0.5);
    } else {
      int64_t fan_in = 1;
      for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
      r = (2.0 * x - 1.0) * std::sqrt(3.0 / static_cast<double>(fan_in));
    }
    v[static_cast<size_t>(i)] = static_cast<float>(r);
  }
  return v;
}

inline void golden_init(nn::Module& m) {
  NoGradGuard ng;
  for (auto& [k, t] : m.state_dict()) {
    if (ends_with(k, "num_batches_tracked")) {
      t.fill_(0.0);
      continue;
    }
    Tensor dst = t;
    dst.copy_(from_vector<float>(golden_init_value(k, t.shape()), t.shape()));
  }
}

inline Tensor golden_uniform_pm1(const std::string& name, const Shape& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  const auto u = golden_u01(name, n);
  std::vector<float> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = static_cast<float>(2.0 * u[i] - 1.0);
  return from_vector<float>(v, shape);
}
inline Tensor golden_input(int64_t b, int64_t r) { return golden_uniform_pm1("input", {b, 3, r, r}); }
inline Tensor golden_logit_weights(int64_t b, int64_t k) { return golden_uniform_pm1("logit_weights", {b, k}); }

// ---- the golden file: records of whitespace-separated tokens, one per line.
struct GoldenFile {
  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> raw;
  size_t find(const std::string& head, size_t from = 0) const {
    for (size_t i = from; i < lines.size(); ++i)
      if (!lines[i].empty() && lines[i][0] == head) return i;
    return std::string::npos;
  }
};

inline const GoldenFile& golden_file() {
  static GoldenFile g = [] {
    GoldenFile f;
    std::ifstream in(std::string(OFA_TEST_DATA_DIR) + "/ofa_golden.txt");
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

// "setting ks ... e ... d ..." -> three lists.
struct GoldenSetting {
  std::vector<int64_t> ks, d;
  std::vector<double> e;
};
inline GoldenSetting parse_setting(const std::vector<std::string>& t) {
  GoldenSetting s;
  int part = -1;
  for (size_t i = 1; i < t.size(); ++i) {
    if (t[i] == "ks") part = 0;
    else if (t[i] == "e") part = 1;
    else if (t[i] == "d") part = 2;
    else if (part == 0) s.ks.push_back(std::stoll(t[i]));
    else if (part == 1) s.e.push_back(std::stod(t[i]));
    else if (part == 2) s.d.push_back(std::stoll(t[i]));
  }
  return s;
}

inline std::vector<double> parse_values(const std::vector<std::string>& t) {
  std::vector<double> v;
  for (size_t i = 1; i < t.size(); ++i) v.push_back(std::stod(t[i]));
  return v;
}

// A case block: logits, per-parameter gradient checksums (sum, sum of
// squares; "none" when PyTorch left the gradient unset), running-stat sums,
// num_batches_tracked.
struct GoldenCase {
  std::vector<double> logits;
  std::map<std::string, std::pair<double, double>> grads;
  std::vector<std::string> grad_order, no_grad;
  std::map<std::string, double> bufs;
  std::map<std::string, int64_t> nbt;
  // Nameless checksums ("gradsums N CRC" then N "g" lines, in the order of
  // named_parameters(); see resolve_compact_grads). Empty entry: no gradient.
  int64_t compact_count = -1;
  uint64_t compact_crc = 0;
  std::vector<std::vector<double>> compact;
};
inline GoldenCase parse_case(const GoldenFile& f, size_t at) {
  GoldenCase c;
  for (size_t i = at + 1; i < f.lines.size() && !(f.lines[i].size() == 1 && f.lines[i][0] == "end"); ++i) {
    const auto& t = f.lines[i];
    if (t.empty()) continue;
    if (t[0] == "logits") c.logits = parse_values(t);
    if (t[0] == "grad") {
      c.grad_order.push_back(t[1]);
      if (t[2] == "none") c.no_grad.push_back(t[1]);
      else c.grads[t[1]] = {std::stod(t[2]), std::stod(t[3])};
    }
    if (t[0] == "buf") c.bufs[t[1]] = std::stod(t[2]);
    if (t[0] == "nbt") c.nbt[t[1]] = std::stoll(t[2]);
    if (t[0] == "gradsums") {
      c.compact_count = std::stoll(t[1]);
      c.compact_crc = std::stoull(t[2]);
    }
    if (t[0] == "g") c.compact.push_back(t[1] == "none" ? std::vector<double>{} : std::vector<double>{std::stod(t[1]), std::stod(t[2])});
  }
  return c;
}

// Gives nameless checksums the names of `params` (grad_order, grads, no_grad),
// after checking that the golden file was written for the same parameter list:
// same count, same crc32 of the names joined by newlines.
inline ::testing::AssertionResult resolve_compact_grads(GoldenCase& c, const nn::NamedTensors& params) {
  if (c.compact_count < 0) return ::testing::AssertionFailure() << "golden case has no gradsums record";
  if (static_cast<int64_t>(c.compact.size()) != c.compact_count)
    return ::testing::AssertionFailure() << "gradsums announces " << c.compact_count << " lines, the case has " << c.compact.size();
  if (static_cast<int64_t>(params.size()) != c.compact_count)
    return ::testing::AssertionFailure() << params.size() << " parameters here, " << c.compact_count << " in the golden case";
  std::string names;
  for (size_t i = 0; i < params.size(); ++i) names += (i ? "\n" : "") + params[i].first;
  const uint64_t crc = crc32(0L, reinterpret_cast<const Bytef*>(names.data()), static_cast<uInt>(names.size()));
  if (crc != c.compact_crc)
    return ::testing::AssertionFailure() << "parameter names or their order differ from the golden case (crc32 " << crc << " vs "
                                         << c.compact_crc << ")";
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& k = params[i].first;
    c.grad_order.push_back(k);
    if (c.compact[i].empty()) c.no_grad.push_back(k);
    else c.grads[k] = {c.compact[i][0], c.compact[i][1]};
  }
  return ::testing::AssertionSuccess();
}

inline double sum_of(const Tensor& t) {
  double s = 0;
  for (double v : t.detach().to(DType::F64).to_vector<double>()) s += v;
  return s;
}
inline double sumsq_of(const Tensor& t) {
  double s = 0;
  for (double v : t.detach().to(DType::F64).to_vector<double>()) s += v * v;
  return s;
}

// Relative closeness of logits (scaled by the largest |logit|) and of the
// per-parameter gradient checksums against the golden case.
inline ::testing::AssertionResult logits_close(const Tensor& y, const std::vector<double>& ref, double rel) {
  const auto v = y.detach().to(DType::F64).contiguous().to_vector<double>();
  if (v.size() != ref.size()) return ::testing::AssertionFailure() << "logit count " << v.size() << " vs " << ref.size();
  double mx = 0;
  for (double r : ref) mx = std::max(mx, std::fabs(r));
  for (size_t i = 0; i < v.size(); ++i)
    if (std::fabs(v[i] - ref[i]) > rel * std::max(std::fabs(ref[i]), 0.1 * mx))
      return ::testing::AssertionFailure() << "logit " << i << ": " << v[i] << " vs golden " << ref[i] << " (max |logit| "
                                           << mx << ")";
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult grads_close(const nn::NamedTensors& params, const GoldenCase& c, double rel,
                                              int64_t* compared = nullptr) {
  std::map<std::string, Tensor> byname(params.begin(), params.end());
  // Some gradients are zero analytically (e.g. a BN bias feeding a conv that
  // a training-mode BN follows) and float32 noise here: measure every error
  // also against the largest gradient norm of the case.
  double gmax = 0;
  for (const auto& [k, v] : c.grads) gmax = std::max(gmax, std::sqrt(v.second));
  const double floor = 1e-5 * gmax;
  int64_t n = 0;
  for (const auto& name : c.grad_order) {
    auto it = byname.find(name);
    if (it == byname.end()) return ::testing::AssertionFailure() << "no parameter " << name;
    Tensor g = it->second.grad();
    auto ref = c.grads.find(name);
    if (ref == c.grads.end()) {  // PyTorch: no gradient; here undefined or all zero
      if (g.defined() && sumsq_of(g) != 0.0)
        return ::testing::AssertionFailure() << name << " has a gradient but PyTorch has none";
      continue;
    }
    if (!g.defined()) return ::testing::AssertionFailure() << name << " has no gradient";
    const double s = sum_of(g), ss = sumsq_of(g), rs = ref->second.first, rss = ref->second.second;
    // The sum may cancel: compare it on the scale of its Cauchy-Schwarz bound.
    const double root_n = std::sqrt(static_cast<double>(g.numel()));
    const double scale = std::sqrt(rss) * root_n;
    if (std::fabs(std::sqrt(ss) - std::sqrt(rss)) > 0.5 * rel * std::sqrt(rss) + floor ||
        std::fabs(s - rs) > rel * std::fabs(rs) + 0.1 * rel * scale + floor * root_n)
      return ::testing::AssertionFailure() << name << ": grad sum " << s << " vs " << rs << ", sum of squares " << ss
                                           << " vs " << rss;
    ++n;
  }
  if (compared) *compared = n;
  return ::testing::AssertionSuccess();
}

}  // namespace ofa::test
