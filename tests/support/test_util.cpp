#include "tests/support/test_util.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace ofa::test {

Tensor randn_t(const Shape& shape, uint64_t seed, DType dt) {
  Generator g(seed);
  return randn(shape, dt, &g);
}

Tensor uniform_t(const Shape& shape, uint64_t seed, double lo, double hi, DType dt) {
  Generator g(seed);
  Tensor t = empty(shape, dt);
  uniform_(t, lo, hi, &g);
  return t;
}

::testing::AssertionResult all_close(const Tensor& a, const std::vector<double>& bv, double atol, double rtol) {
  std::vector<double> av = a.to_vector<double>();
  if (av.size() != bv.size())
    return ::testing::AssertionFailure() << "sizes differ: " << av.size() << " vs " << bv.size();
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    double lim = atol + rtol * std::fabs(bv[i]);
    double err = std::fabs(av[i] - bv[i]);
    if (!(err <= lim)) {  // NaN fails too
      ++bad;
      double excess = std::isnan(err) ? std::numeric_limits<double>::infinity() : err - lim;
      if (worst < 0 || excess > worst_excess) {
        worst = static_cast<int64_t>(i);
        worst_excess = excess;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << av.size() << " elements differ; worst at flat index "
                                       << worst << ": " << av[worst] << " vs " << bv[worst] << " (atol " << atol
                                       << ", rtol " << rtol << ")";
}

::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  return all_close(a, b.to_vector<double>(), atol, rtol);
}

::testing::AssertionResult close_in_scale(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  const std::vector<double> bv = b.to_vector<double>();
  double scale = 0;
  for (double v : bv) scale = std::max(scale, std::fabs(v));
  // all_close with one absolute limit for every element.
  ::testing::AssertionResult r = all_close(a, bv, atol + rtol * scale, 0.0);
  if (!r) r << "; the limit is atol " << atol << " + rtol " << rtol << " x max|b| " << scale;
  return r;
}

namespace {
double eval_loss(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& in,
                 const Tensor& R) {
  NoGradGuard ng;
  Tensor out = f(in);
  return sum(mul(out.to(DType::F64), R)).item();
}
}  // namespace

::testing::AssertionResult grad_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                      const std::vector<Tensor>& inputs, const GradCheckOptions& opt,
                                      GradCheckReport* report) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad() && t.dtype() != DType::F64)
      return ::testing::AssertionFailure() << "grad_check wants float64 inputs";
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) Tensor(t).set_grad(Tensor());
  Tensor out = f(inputs);
  if (!out.requires_grad()) return ::testing::AssertionFailure() << "output does not require grad";
  Tensor R = randn_t(out.shape(), 12345, DType::F64);
  sum(mul(out, R)).backward();

  GradCheckReport rep;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    if (!x.grad().defined()) return ::testing::AssertionFailure() << "input " << k << " received no gradient";
    if (!x.is_contiguous()) return ::testing::AssertionFailure() << "grad_check wants contiguous leaves";
    std::vector<double> analytic = x.grad().to_vector<double>();
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + opt.eps;
      const double lp = eval_loss(f, inputs, R);
      p[i] = orig - opt.eps;
      const double lm = eval_loss(f, inputs, R);
      p[i] = orig;
      const double l0 = eval_loss(f, inputs, R);
      const double right = (lp - l0) / opt.eps, left = (l0 - lm) / opt.eps;
      const double central = (lp - lm) / (2 * opt.eps);
      if (std::fabs(right - left) > opt.kink_tol * (1 + std::fabs(central))) {
        ++rep.skipped_at_kinks;
        continue;
      }
      ++rep.checked;
      const double err = std::fabs(analytic[i] - central);
      if (!(err <= opt.atol + opt.rtol * std::fabs(central)))
        return ::testing::AssertionFailure() << "input " << k << " element " << i << ": analytic " << analytic[i]
                                             << " vs numeric " << central << " (|diff| " << err << ")";
    }
  }
  if (report) *report = rep;
  const int64_t total = rep.checked + rep.skipped_at_kinks;
  if (total == 0) return ::testing::AssertionFailure() << "no input requires grad: nothing was checked";
  if (rep.skipped_at_kinks > opt.max_skipped_fraction * total)
    return ::testing::AssertionFailure() << rep.skipped_at_kinks << " of " << total
                                         << " points skipped as kinks: the check would prove little";
  return ::testing::AssertionSuccess();
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ofa_test_XXXXXX").string();
  OFA_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed for ", tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void ResetDefaultGenerator::OnTestStart(const ::testing::TestInfo&) { default_generator().set_state(GeneratorState{0, 0}); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace ofa::test
