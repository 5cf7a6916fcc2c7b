#include "benchmarks/ops_bench.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "benchmarks/bench_util.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace ofa::bench {

// ---------------------------------------------------------------- the cases

namespace {

std::vector<OpCase> make_cases() {
  std::vector<OpCase> v;
  auto add = [&](OpCase c) { v.push_back(std::move(c)); };
  // OFA-MobileNetV3 shapes at CPU size: batch 8 at resolution 128.
  add({"stem_conv3x3_s2", "conv2d", "stem conv 3x3 s2 pad 1, 3->16, 128x128 images", {8, 3, 128, 128},
       {16, 3, 3, 3}, {}, 2, 1, false, false});
  add({"pw_expand_24to144", "conv2d", "1x1 expand 24->144 at 32x32", {8, 24, 32, 32}, {144, 24, 1, 1}, {}, 1, 0});
  add({"pw_expand_40to240", "conv2d", "1x1 expand 40->240 at 16x16", {8, 40, 16, 16}, {240, 40, 1, 1}, {}, 1, 0});
  add({"pw_expand_24to96_slice", "conv2d", "1x1 expand 24->96 at 32x32, rows [:96] of a stored [144, 24] weight",
       {8, 24, 32, 32}, {144, 24, 1, 1}, leading(96, 24), 1, 0});
  add({"pw_project_96to24_slice", "conv2d",
       "1x1 project 96->24 at 32x32, columns [:, :96] of a stored [24, 144] weight", {8, 96, 32, 32},
       {24, 144, 1, 1}, leading(24, 96), 1, 0});
  add({"dw_k3_s1", "depthwise_conv2d", "depthwise 3x3 s1, 144ch 32x32", {8, 144, 32, 32}, {144, 1, 3, 3}, {}, 1, 1});
  add({"dw_k5_s1_crop7", "depthwise_conv2d", "depthwise 5x5 s1, 144ch 32x32, centre crop of a stored 7x7 weight",
       {8, 144, 32, 32}, {144, 1, 7, 7}, centre_crop(144, 5), 1, 2});
  add({"dw_k7_s1", "depthwise_conv2d", "depthwise 7x7 s1, 144ch 32x32", {8, 144, 32, 32}, {144, 1, 7, 7}, {}, 1, 3});
  add({"dw_k5_s2_crop7", "depthwise_conv2d", "depthwise 5x5 s2, 240ch 16x16, centre crop of a stored 7x7 weight",
       {8, 240, 16, 16}, {240, 1, 7, 7}, centre_crop(240, 5), 2, 2});
  add({"bn_train", "batch_norm", "batch norm, training (batch stats, running update), 144ch 32x32",
       {8, 144, 32, 32}, {144}, {}, 1, 0, true});
  add({"hswish", "hswish", "h-swish, 144ch 32x32", {8, 144, 32, 32}, {}, {}});
  add({"se_gap_mul", "se", "SE pattern: x * global_avg_pool2d(x) (broadcast), 144ch 32x32", {8, 144, 32, 32}, {}, {}});
  add({"linear_1280to1000", "linear", "classifier linear 1280->1000 with bias, batch 8", {8, 1280}, {1000, 1280}, {},
       1, 0, true});
  OpCase ce{"xent_ls0.1", "cross_entropy", "cross-entropy, label smoothing 0.1, logits [64, 1000]", {64, 1000}, {}, {}};
  ce.label_smoothing = 0.1;
  add(ce);
  return v;
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

}  // namespace

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = make_cases();
  return cases;
}

Shape OpCase::weight_shape() const { return view_shape(weight_full, weight_view); }

double OpCase::macs() const {
  const Shape w = weight_shape();
  if (kind == "conv2d") {
    const int64_t Ho = out_size(input[2], w[2], stride, padding), Wo = out_size(input[3], w[3], stride, padding);
    return double(input[0]) * w[0] * Ho * Wo * w[1] * w[2] * w[3];
  }
  if (kind == "depthwise_conv2d") {
    const int64_t Ho = out_size(input[2], w[2], stride, padding), Wo = out_size(input[3], w[3], stride, padding);
    return double(input[0]) * input[1] * Ho * Wo * w[2] * w[3];
  }
  if (kind == "linear") return double(input[0]) * w[0] * w[1];
  return 0.0;
}

Json OpCase::to_json() const {
  Json j = Json::object();
  j["name"] = name;
  j["kind"] = kind;
  j["input"] = input;
  j["weight_full"] = weight_full.empty() ? Json() : Json(weight_full);
  j["weight_view"] = weight_view.empty() ? Json() : Json(weight_view);
  j["weight"] = weight_full.empty() ? Json() : Json(weight_shape());
  j["stride"] = stride;
  j["padding"] = padding;
  j["kernel"] = weight_full.size() == 4 ? Json(weight_shape()[2]) : Json();
  j["bias"] = bias;
  j["input_grad"] = input_grad;
  j["label_smoothing"] = label_smoothing;
  j["channels_last"] = input.size() == 4;
  return j;
}

// ---------------------------------------------------------------- our side

namespace {

struct Options {
  int64_t threads = 0;
  int64_t repeat = 20;
  int64_t warmup = 3;
  std::string filter;
  bool torch = true;
  std::string python;
  std::string json_path;
  bool check = false;
};

// A case built with the engine: leaves that receive gradients, and the
// forward (which takes the weight views itself, as a dynamic OFA layer does).
struct Built {
  std::vector<Tensor> leaves;
  std::function<Tensor()> fwd;
};

Tensor randn_scaled(const Shape& s, double scale, Generator& g) {
  Tensor t = randn(s, DType::F32, &g);
  t.mul_(scale);
  return t;
}

Built build(const OpCase& c, Generator& g) {
  Built b;
  Tensor x = randn(c.input, DType::F32, &g);
  if (x.dim() == 4) x = x.contiguous(MemoryFormat::ChannelsLast);
  x.set_requires_grad(c.input_grad);
  if (c.input_grad) b.leaves.push_back(x);
  Tensor w_full, bias;
  if (!c.weight_full.empty()) {
    int64_t fan_in = 1;
    for (size_t d = 1; d < c.weight_full.size(); ++d) fan_in *= c.weight_full[d];
    w_full = c.kind == "batch_norm" ? ones(c.weight_full)
                                    : randn_scaled(c.weight_full, 1.0 / std::sqrt(double(fan_in)), g);
    w_full.set_requires_grad(true);
    b.leaves.push_back(w_full);
  }
  if (c.bias) {
    bias = c.kind == "batch_norm" ? zeros({c.weight_shape()[0]}) : randn_scaled({c.weight_shape()[0]}, 0.1, g);
    bias.set_requires_grad(true);
    b.leaves.push_back(bias);
  }
  const auto view = c.weight_view;
  if (c.kind == "conv2d") {
    Conv2dArgs a;
    a.stride = {c.stride, c.stride};
    a.padding = {c.padding, c.padding};
    b.fwd = [=] { return conv2d(x, view_of(w_full, view), bias, a); };
  } else if (c.kind == "depthwise_conv2d") {
    const int64_t s = c.stride;
    b.fwd = [=] { return depthwise_conv2d(x, view_of(w_full, view), s); };
  } else if (c.kind == "batch_norm") {
    Tensor rm = zeros({c.input[1]}), rv = ones({c.input[1]});
    b.fwd = [=] { return batch_norm(x, w_full, bias, rm, rv, true, 0.1, 1e-5); };
  } else if (c.kind == "hswish") {
    b.fwd = [=] { return hswish(x); };
  } else if (c.kind == "se") {
    b.fwd = [=] { return mul(x, global_avg_pool2d(x)); };
  } else if (c.kind == "linear") {
    b.fwd = [=] { return linear(x, view_of(w_full, view), bias); };
  } else if (c.kind == "cross_entropy") {
    std::vector<int64_t> t(static_cast<size_t>(c.input[0]));
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int64_t>((i * 7919) % static_cast<size_t>(c.input[1]));
    Tensor target = from_vector(t, {c.input[0]});
    const double ls = c.label_smoothing;
    b.fwd = [=] { return cross_entropy(x, target, ls); };
  } else {
    throw Error("ofa_bench ops: case " + c.name + " has unknown kind " + c.kind);
  }
  return b;
}

struct Measured {
  Timing fwd, fwd_bwd;
  bool finite = true;
  std::string error;  // empty when measured
};

Measured measure_ours(const OpCase& c, const Options& o) {
  Measured m;
  Generator g(1234);
  Built b = build(c, g);
  auto drop_grads = [&] {
    for (Tensor& t : b.leaves) t.set_grad(Tensor());
  };
  // Fixed upstream gradient r: backward(r) gives the gradients of sum(out * r)
  // without timing that extra product and sum (the competitor does the same).
  Tensor probe = b.fwd();
  const bool scalar = probe.dim() == 0;
  Tensor r;
  if (!scalar) {
    r = empty_like(probe.detach());  // same memory layout as the output
    r.copy_(randn(probe.shape(), DType::F32, &g));
  }
  m.finite = all_finite(probe);
  probe = Tensor();
  auto fwd_bwd = [&] {
    Tensor out = b.fwd();
    if (scalar) out.backward();
    else out.backward(r);
  };
  if (o.check) {
    drop_grads();
    fwd_bwd();
    for (const Tensor& t : b.leaves) m.finite = m.finite && all_finite(t.grad());
  }
  m.fwd = time_runs(o.warmup, o.repeat, [] {}, [&] { (void)b.fwd(); });
  m.fwd_bwd = time_runs(o.warmup, o.repeat, drop_grads, fwd_bwd);
  return m;
}

// ---------------------------------------------------------------- the competitor

struct TorchRun {
  bool ok = false;
  std::string why;  // why the torch column is absent
  std::string version;
  int64_t threads = 0;
  std::vector<Measured> cases;  // by case index; error set when a case failed
};

TorchRun run_torch(const std::vector<OpCase>& cases, const Options& o) {
  TorchRun tr;
  Json req = Json::object();
  req["threads"] = o.threads;
  req["repeat"] = o.repeat;
  req["warmup"] = o.warmup;
  req["check"] = o.check;
  Json arr = Json::array();
  for (const OpCase& c : cases) arr.push_back(c.to_json());
  req["cases"] = std::move(arr);
  // Thread pools that torch.set_num_threads does not reach (the BLAS that
  // F.linear calls) get the same count through the environment.
  CompetitorReply cr = run_competitor(o.python, "torch_ops.py", req, thread_env(o.threads));
  if (!cr.ok) {
    tr.why = cr.why;
    return tr;
  }
  const Json& res = cr.reply;
  const std::string& script = cr.script;
  try {
    tr.version = res.at("torch").get<std::string>();
    tr.threads = res.at("threads").get<int64_t>();
    std::vector<std::string> names;
    for (const OpCase& c : cases) names.push_back(c.name);
    for (ReplyCase& r : reply_cases(res, names, "fwd_ms", "fwd_bwd_ms"))
      tr.cases.push_back(Measured{std::move(r.first), std::move(r.second), r.finite, std::move(r.error)});
  } catch (const std::exception& e) {
    tr.why = std::string("unexpected output from ") + script + ": " + e.what();
    tr.cases.clear();
    return tr;
  }
  tr.ok = true;
  return tr;
}

// ---------------------------------------------------------------- report

Options parse_ops(int argc, char** argv) {
  Options o;
  o.threads = default_threads();
  o.python = default_python();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      ops_usage(stdout);
      std::exit(0);
    }
    if (a == "--no-torch") {
      o.torch = false;
      continue;
    }
    if (a == "--check") {
      o.check = true;
      continue;
    }
    const bool takes_value = a == "--threads" || a == "--repeat" || a == "--warmup" || a == "--filter" ||
                             a == "--python" || a == "--json";
    if (!takes_value) throw UsageError("unknown option '" + a + "' for 'ofa_bench ops' (see ofa_bench ops --help)");
    if (i + 1 >= argc) throw UsageError(a + " needs a value (see ofa_bench ops --help)");
    const std::string v = argv[++i];
    if (a == "--threads") o.threads = parse_int_arg(a, v, 1);
    else if (a == "--repeat") o.repeat = parse_int_arg(a, v, 1);
    else if (a == "--warmup") o.warmup = parse_int_arg(a, v, 0);
    else if (a == "--filter") o.filter = v;
    else if (a == "--python") o.python = v;
    else if (a == "--json") o.json_path = v;
  }
  if (o.check) {
    o.repeat = 1;
    o.warmup = 0;
  }
  return o;
}

}  // namespace

void ops_usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_bench ops [--threads N] [--repeat N] [--warmup N] [--filter SUBSTRING]\n"
               "                     [--no-torch] [--python PATH] [--json FILE] [--check]\n"
               "\n"
               "Times the engine's CPU ops on OFA-MobileNetV3 shapes (float32, batch 8 at\n"
               "resolution 128, activations channels-last) and, in the same run, the same ops\n"
               "in PyTorch (benchmarks/torch_ops.py). Each case is timed forward, and forward +\n"
               "backward (backward of sum(out * r) for a fixed r, i.e. out.backward(r), or of\n"
               "the loss itself); the table shows the median over --repeat runs after --warmup\n"
               "runs (the minimum too in --json). ratio = torch / ours: above 1 we are faster.\n"
               "\n"
               "  --threads N        OpenMP/OpenBLAS threads for us, torch.set_num_threads for\n"
               "                     PyTorch (default: $OMP_NUM_THREADS or the cores, now %lld)\n"
               "  --repeat N         timed runs per measurement (default 20)\n"
               "  --warmup N         untimed runs before them (default 3)\n"
               "  --filter SUBSTRING only the cases whose name contains SUBSTRING\n"
               "  --no-torch         do not run the PyTorch competitor\n"
               "  --python PATH      interpreter for the competitor (default $OFA_PYTHON, else\n"
               "                     /usr/bin/python3)\n"
               "  --json FILE        also write every number (all samples) to FILE\n"
               "  --check            quick self-check: every case once (repeat 1, warmup 0);\n"
               "                     exits 1 unless all outputs and gradients are finite\n"
               "\n"
               "cases:\n",
               static_cast<long long>(default_threads()));
  for (const OpCase& c : op_cases()) std::fprintf(out, "  %-24s %s\n", c.name.c_str(), c.what.c_str());
}

int ops_main(int argc, char** argv) {
  Options o = parse_ops(argc, argv);
  std::vector<OpCase> cases;
  for (const OpCase& c : op_cases())
    if (o.filter.empty() || c.name.find(o.filter) != std::string::npos) cases.push_back(c);
  if (cases.empty()) throw UsageError("--filter '" + o.filter + "' matches no case (see ofa_bench ops --help)");
  std::ofstream json_out;
  if (!o.json_path.empty()) {
    json_out.open(o.json_path);  // opened now so that a bad path fails before the run
    OFA_CHECK(json_out, "--json: cannot write ", o.json_path);
  }

  set_threads(o.threads);
  std::printf("ofa_bench ops: %zu case%s, float32, threads %lld, median of %lld run%s after %lld warmup%s\n",
              cases.size(), cases.size() == 1 ? "" : "s", static_cast<long long>(o.threads),
              static_cast<long long>(o.repeat), o.repeat == 1 ? "" : "s", static_cast<long long>(o.warmup),
              o.check ? " (--check)" : "");
  std::printf("CPU:      %s\n", cpu_model().c_str());
  std::printf("OpenBLAS: %s\n", openblas_build().c_str());
  std::fflush(stdout);

  // Progress on a terminal only: redirected stderr stays clean.
  const bool progress = isatty(2);
  std::vector<Measured> ours;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (progress) std::fprintf(stderr, "\r[ofa-engine %zu/%zu] %-28s", i + 1, cases.size(), cases[i].name.c_str());
    ours.push_back(measure_ours(cases[i], o));
  }
  if (progress) std::fprintf(stderr, "\r%*s\r", 60, "");

  TorchRun tr;
  if (o.torch) {
    if (progress) std::fprintf(stderr, "[PyTorch] running %s benchmarks/torch_ops.py ...", o.python.c_str());
    tr = run_torch(cases, o);
    if (progress) std::fprintf(stderr, "\r%*s\r", 80, "");
    if (tr.ok)
      std::printf("PyTorch:  %s via %s, threads %lld, channels_last%s\n", tr.version.c_str(), o.python.c_str(),
                  static_cast<long long>(tr.threads),
                  tr.threads != o.threads ? " (WARNING: not the requested thread count)" : "");
    else
      std::printf("PyTorch:  torch column absent: %s\n", tr.why.c_str());
  } else {
    tr.why = "--no-torch";
    std::printf("PyTorch:  torch column absent: --no-torch\n");
  }

  std::printf("\n%-24s %10s %10s %6s %10s %10s %6s %9s %9s\n", "case", "ours fwd", "torch fwd", "ratio", "ours f+b",
              "torch f+b", "ratio", "GFLOP/s", "GFLOP/s");
  std::printf("%-24s %10s %10s %6s %10s %10s %6s %9s %9s\n", "", "ms", "ms", "", "ms", "ms", "", "fwd", "f+b");
  Json report = Json::object();
  report["subcommand"] = "ops";
  report["threads"] = o.threads;
  report["repeat"] = o.repeat;
  report["warmup"] = o.warmup;
  report["cpu"] = cpu_model();
  report["openblas"] = openblas_build();
  Json tj = Json::object();
  tj["present"] = tr.ok;
  if (tr.ok) {
    tj["version"] = tr.version;
    tj["threads"] = tr.threads;
    tj["python"] = o.python;
  } else {
    tj["absent_because"] = tr.why;
  }
  report["torch"] = tj;
  Json jcases = Json::array();
  std::vector<double> r_fwd, r_fb;
  std::vector<std::string> notes;
  bool all_ok = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    const OpCase& c = cases[i];
    const Measured& m = ours[i];
    const Measured* t = tr.ok && tr.cases[i].error.empty() ? &tr.cases[i] : nullptr;
    if (tr.ok && !tr.cases[i].error.empty()) notes.push_back(c.name + ": torch failed: " + tr.cases[i].error);
    const double of = m.fwd.median_ms(), ofb = m.fwd_bwd.median_ms();
    const double tf = t ? t->fwd.median_ms() : std::nan(""), tfb = t ? t->fwd_bwd.median_ms() : std::nan("");
    const double rf = tf / of, rfb = tfb / ofb;
    const double gf = c.macs() > 0 ? c.flops_fwd() / (of * 1e6) : std::nan("");
    const double gfb = c.macs() > 0 ? c.flops_fwd_bwd() / (ofb * 1e6) : std::nan("");
    if (t) {
      r_fwd.push_back(rf);
      r_fb.push_back(rfb);
    }
    std::printf("%-24s %10s %10s %6s %10s %10s %6s %9s %9s\n", c.name.c_str(), cell("%.3f", of).c_str(),
                cell("%.3f", tf).c_str(), cell("%.2f", rf).c_str(), cell("%.3f", ofb).c_str(), cell("%.3f", tfb).c_str(),
                cell("%.2f", rfb).c_str(), cell("%.1f", gf).c_str(), cell("%.1f", gfb).c_str());
    if (!m.finite) {
      all_ok = false;
      notes.push_back(c.name + ": ofa-engine output or gradient is not finite");
    }
    if (t && !t->finite) notes.push_back(c.name + ": torch output or gradient is not finite");
    Json jc = c.to_json();
    jc["what"] = c.what;
    jc["macs"] = c.macs();
    Json jo = Json::object();
    jo["fwd"] = timing_json(m.fwd);
    jo["fwd_bwd"] = timing_json(m.fwd_bwd);
    jo["finite"] = m.finite;
    jc["ours"] = jo;
    if (t) {
      Json jt = Json::object();
      jt["fwd"] = timing_json(t->fwd);
      jt["fwd_bwd"] = timing_json(t->fwd_bwd);
      jt["finite"] = t->finite;
      jc["torch"] = jt;
      jc["ratio_fwd"] = rf;
      jc["ratio_fwd_bwd"] = rfb;
    } else {
      jc["torch"] = Json();
    }
    jc["gflops_fwd"] = gf;
    jc["gflops_fwd_bwd"] = gfb;
    jcases.push_back(jc);
  }
  report["cases"] = jcases;
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  if (!r_fwd.empty()) {
    const double gm_f = geometric_mean(r_fwd), gm_fb = geometric_mean(r_fb);
    std::printf("\ngeometric mean of torch/ours over %zu cases: fwd %.2f, fwd+bwd %.2f (>1: ofa-engine is faster)\n",
                r_fwd.size(), gm_f, gm_fb);
    report["geomean_ratio_fwd"] = gm_f;
    report["geomean_ratio_fwd_bwd"] = gm_fb;
  } else {
    std::printf("\nno ratios: the torch column is absent\n");
  }
  if (o.check) {
    if (all_ok) std::printf("check: OK: every output and gradient of the %zu cases is finite\n", cases.size());
    else std::printf("check: FAILED: non-finite values (see the notes above)\n");
  }
  report["check"] = o.check ? Json(all_ok) : Json();
  if (json_out.is_open()) {
    json_out << report.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    json_out.close();
    OFA_CHECK(json_out, "--json: writing ", o.json_path, " failed");
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  return o.check && !all_ok ? 1 : 0;
}

}  // namespace ofa::bench
