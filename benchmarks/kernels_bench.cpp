#include "benchmarks/kernels_bench.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/common/conv_math.h"

namespace ofa::bench {
namespace {

// ---------------------------------------------------------------- the cases

// The five stages of OFA-MobileNetV3 (docs/ofa-reference.md): width, stride
// of the first block, activation, and the width coming in.
struct Stage {
  int64_t width, stride;
  const char* act;
  int64_t in_width;
};
constexpr Stage kStages[] = {
    {24, 2, "relu", 16}, {40, 2, "relu", 24}, {80, 2, "hswish", 40}, {112, 1, "hswish", 80}, {160, 2, "hswish", 112},
};
constexpr int64_t kMaxExpand = 6;     // channels of the stored (full) weights: 6 x width
constexpr int64_t kActiveExpand = 4;  // the sliced 1x1 convs read 4 x width of them
constexpr int64_t kStoredKernel = 7;  // depthwise weights are stored 7x7; 3 and 5 are centre crops

// One case. The table (make_cases) is the single source of truth: the Python
// competitor receives it as JSON and builds the same ops.
struct KernelCase {
  std::string name;
  std::string kind;  // depthwise | pointwise | bn_act
  std::string what;
  int64_t resolution = 0, stage_width = 0;
  Shape input;        // [N, C, H, W], channels-last in memory
  Shape weight_full;  // the stored weight; empty for bn_act
  WeightView weight_view;
  int64_t stride = 1, padding = 0;
  std::string act;  // bn_act: relu | hswish

  Shape weight() const { return view_shape(weight_full, weight_view); }
  Shape output() const {
    if (kind == "bn_act") return input;
    const Shape w = weight();
    const int64_t Ho = kernels::conv_out_size(input[2], w[2], stride, padding);
    const int64_t Wo = kernels::conv_out_size(input[3], w[3], stride, padding);
    return {input[0], kind == "depthwise" ? input[1] : w[0], Ho, Wo};
  }
  // Bytes a kernel must move at least (float32): forward reads the input and
  // the active weight and writes the output; backward reads the output
  // gradient, the input and the weight and writes the input and weight
  // gradients. BN + activation: the input and output (gradients) plus the
  // per-channel parameters.
  double bytes_fwd() const {
    if (kind == "bn_act") return 4.0 * (2.0 * numel(input) + 2.0 * input[1]);
    return 4.0 * (numel(input) + numel(weight()) + numel(output()));
  }
  double bytes_bwd() const {
    if (kind == "bn_act") return 4.0 * (3.0 * numel(input) + 3.0 * input[1]);
    return 4.0 * (numel(output()) + 2.0 * numel(input) + 2.0 * numel(weight()));
  }
  // 2 per multiply-accumulate; backward = input gradient + weight gradient.
  double flops_fwd() const {
    if (kind == "bn_act") return 0.0;
    const Shape w = weight(), y = output();
    const double per_out = kind == "depthwise" ? double(w[2]) * w[3] : double(w[1]);
    return 2.0 * numel(y) * per_out;
  }
  double flops_bwd() const { return 2.0 * flops_fwd(); }
  static double numel(const Shape& s) {
    double n = 1;
    for (int64_t d : s) n *= double(d);
    return n;
  }

  Json to_json() const {
    Json j = Json::object();
    j["name"] = name;
    j["kind"] = kind;
    j["resolution"] = resolution;
    j["stage_width"] = stage_width;
    j["input"] = input;
    j["weight_full"] = weight_full.empty() ? Json() : Json(weight_full);
    j["weight_view"] = weight_view.empty() ? Json() : Json(weight_view);
    j["weight"] = weight_full.empty() ? Json() : Json(weight());
    j["output"] = output();
    j["stride"] = stride;
    j["padding"] = padding;
    j["act"] = act.empty() ? Json() : Json(act);
    j["channels_last"] = true;
    return j;
  }
};

std::string shape_x(int64_t C, int64_t H, int64_t W) {
  return std::to_string(C) + "ch " + std::to_string(H) + "x" + std::to_string(W);
}

std::vector<KernelCase> make_cases(const std::vector<int64_t>& resolutions, int64_t batch, bool quick) {
  std::vector<KernelCase> v;
  for (int64_t res : resolutions) {
    // Spatial size entering each stage: the stem (3x3 s2) halves the image
    // (ceil, padding 1); each stride-2 stage halves it again (ceil, padding k/2).
    int64_t h = kernels::conv_out_size(res, 3, 2, 1);
    for (size_t si = 0; si < std::size(kStages); ++si) {
      const Stage& st = kStages[si];
      const int64_t h_in = h;
      h = kernels::conv_out_size(h_in, 3, st.stride, 1);
      if (quick && si != 0 && si + 1 != std::size(kStages)) continue;
      if (quick && res != resolutions.front()) continue;
      const std::string pre = "r" + std::to_string(res) + "_w" + std::to_string(st.width) + "_";
      auto base = [&](const std::string& name, const std::string& kind, const std::string& what) {
        KernelCase c;
        c.name = pre + name;
        c.kind = kind;
        c.what = "res " + std::to_string(res) + ", stage " + std::to_string(st.width) + ": " + what;
        c.resolution = res;
        c.stage_width = st.width;
        return c;
      };
      // Depthwise at the widest expand: the inner blocks (stride 1, 6 x width
      // channels) and, for stride-2 stages, the first block (6 x the incoming width).
      struct Dw {
        int64_t C, H, stride;
      };
      std::vector<Dw> dws = {{kMaxExpand * st.width, h, 1}};
      if (st.stride == 2) dws.push_back({kMaxExpand * st.in_width, h_in, 2});
      for (const Dw& d : dws)
        for (int64_t k : {3, 5, 7}) {
          KernelCase c = base("dw_k" + std::to_string(k) + "_s" + std::to_string(d.stride), "depthwise",
                              "depthwise " + std::to_string(k) + "x" + std::to_string(k) + " s" +
                                  std::to_string(d.stride) + ", " + shape_x(d.C, d.H, d.H) +
                                  (k < kStoredKernel ? ", centre crop of a stored 7x7" : ", stored 7x7"));
          c.input = {batch, d.C, d.H, d.H};
          c.weight_full = {d.C, 1, kStoredKernel, kStoredKernel};
          c.weight_view = centre_crop(d.C, k, kStoredKernel);
          c.stride = d.stride;
          c.padding = k / 2;
          v.push_back(std::move(c));
        }
      // The sliced pointwise convs of an inner block at expand 4 (of 6 stored).
      const int64_t w = st.width, mid = kActiveExpand * st.width, full = kMaxExpand * st.width;
      {
        KernelCase c = base("pw_expand_" + std::to_string(w) + "to" + std::to_string(mid), "pointwise",
                            "1x1 expand " + std::to_string(w) + "->" + std::to_string(mid) + " at " +
                                std::to_string(h) + "x" + std::to_string(h) + ", rows [:" + std::to_string(mid) +
                                "] of a stored [" + std::to_string(full) + ", " + std::to_string(w) + "]");
        c.input = {batch, w, h, h};
        c.weight_full = {full, w, 1, 1};
        c.weight_view = leading(mid, w);
        v.push_back(std::move(c));
      }
      {
        KernelCase c = base("pw_project_" + std::to_string(mid) + "to" + std::to_string(w), "pointwise",
                            "1x1 project " + std::to_string(mid) + "->" + std::to_string(w) + " at " +
                                std::to_string(h) + "x" + std::to_string(h) + ", columns [:, :" +
                                std::to_string(mid) + "] of a stored [" + std::to_string(w) + ", " +
                                std::to_string(full) + "]");
        c.input = {batch, mid, h, h};
        c.weight_full = {w, full, 1, 1};
        c.weight_view = leading(w, mid);
        v.push_back(std::move(c));
      }
      {
        KernelCase c = base(std::string("bn_") + st.act, "bn_act",
                            std::string("batch norm (training) + ") + st.act + ", " + shape_x(full, h, h));
        c.input = {batch, full, h, h};
        c.act = st.act;
        v.push_back(std::move(c));
      }
    }
  }
  return v;
}

// ---------------------------------------------------------------- options

struct Options {
  Device device = Device::cpu();
  std::string device_why;  // how the device was chosen
  std::vector<int64_t> resolutions = {128, 224};
  int64_t batch = 64;
  int64_t repeat = 10, warmup = 2;
  int64_t threads = 0;
  std::string filter;
  std::string json_path;
  bool competitor = true;
  bool quick = false;
  std::string python;
};

std::vector<int64_t> parse_resolutions(const std::string& v) {
  std::vector<int64_t> r;
  size_t b = 0;
  while (true) {
    const size_t e = v.find(',', b);
    r.push_back(parse_int_arg("--resolution", v.substr(b, e == std::string::npos ? std::string::npos : e - b), 32));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return r;
}

Options parse(int argc, char** argv) {
  Options o;
  o.threads = default_threads();
  o.python = default_python();
  std::string device;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      kernels_usage(stdout);
      std::exit(0);
    }
    if (a == "--no-competitor") {
      o.competitor = false;
      continue;
    }
    if (a == "--quick") {
      o.quick = true;
      continue;
    }
    const bool takes_value = a == "--device" || a == "--resolution" || a == "--batch-size" || a == "--repeat" ||
                             a == "--warmup" || a == "--threads" || a == "--filter" || a == "--python" ||
                             a == "--json";
    if (!takes_value)
      throw UsageError("unknown option '" + a + "' for 'ofa_bench kernels' (see ofa_bench kernels --help)");
    if (i + 1 >= argc) throw UsageError(a + " needs a value (see ofa_bench kernels --help)");
    const std::string v = argv[++i];
    if (a == "--device") device = v;
    else if (a == "--resolution") o.resolutions = parse_resolutions(v);
    else if (a == "--batch-size") o.batch = parse_int_arg(a, v, 2);  // BN needs two values per channel
    else if (a == "--repeat") o.repeat = parse_int_arg(a, v, 1);
    else if (a == "--warmup") o.warmup = parse_int_arg(a, v, 0);
    else if (a == "--threads") o.threads = parse_int_arg(a, v, 1);
    else if (a == "--filter") o.filter = v;
    else if (a == "--python") o.python = v;
    else if (a == "--json") o.json_path = v;
  }
  if (device.empty()) {
    o.device = real_gpu() ? Device::cuda(0) : Device::cpu();
    o.device_why = real_gpu() ? "default: a GPU is present" : "default: no GPU";
  } else {
    o.device = parse_device(device);
    o.device_why = "--device " + device;
  }
  return o;
}

// ---------------------------------------------------------------- our side

// An activation-like tensor on `dev`: random, channels-last when 4-D.
Tensor device_randn(const Shape& s, double scale, Device dev, Generator& g) {
  Tensor host = randn(s, DType::F32, &g);
  host.mul_(scale);
  Tensor t = empty(s, DType::F32, dev, s.size() == 4 ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
  t.copy_(host);
  return t;
}

Tensor device_full(const Shape& s, double v, Device dev) {
  Tensor t = empty(s, DType::F32, dev);
  t.fill_(v);
  return t;
}

struct Built {
  std::vector<Tensor> leaves;
  std::function<Tensor()> fwd;  // takes the weight view itself, as a dynamic OFA layer does
};

Built build(const KernelCase& c, Device dev, Generator& g) {
  Built b;
  Tensor x = device_randn(c.input, 1.0, dev, g);
  x.set_requires_grad(true);
  b.leaves.push_back(x);
  const WeightView view = c.weight_view;
  if (c.kind == "depthwise" || c.kind == "pointwise") {
    const Shape w = c.weight();
    Tensor w_full = device_randn(c.weight_full, 1.0 / std::sqrt(double(w[1] * w[2] * w[3])), dev, g);
    w_full.set_requires_grad(true);
    b.leaves.push_back(w_full);
    if (c.kind == "depthwise") {
      const int64_t s = c.stride;
      b.fwd = [=] { return depthwise_conv2d(x, view_of(w_full, view), s); };
    } else {
      b.fwd = [=] { return conv2d(x, view_of(w_full, view), Tensor(), Conv2dArgs{}); };
    }
  } else if (c.kind == "bn_act") {
    const int64_t C = c.input[1];
    Tensor gamma = device_full({C}, 1.0, dev), beta = device_full({C}, 0.0, dev);
    gamma.set_requires_grad(true);
    beta.set_requires_grad(true);
    b.leaves.push_back(gamma);
    b.leaves.push_back(beta);
    Tensor rm = device_full({C}, 0.0, dev), rv = device_full({C}, 1.0, dev);
    const Act act = c.act == "hswish" ? Act::HSwish : Act::Relu;
    // One fused pass forward and one backward (batch_norm_act).
    b.fwd = [=] { return batch_norm_act(x, gamma, beta, rm, rv, true, 0.1, 1e-5, act); };
  } else {
    throw Error("ofa_bench kernels: case " + c.name + " has unknown kind " + c.kind);
  }
  return b;
}

struct Measured {
  Timing fwd, bwd;
  bool finite = true;
  std::string error;  // competitor: empty when measured
};

// Runs ahead of every timed call on a GPU: overwrites a buffer larger than
// the L2 cache, so that no case reads its inputs from the previous run's cache.
struct CacheFlush {
  Tensor buf;
  void operator()() {
    if (buf.defined()) buf.fill_(0.0);
  }
};

Measured measure_ours(const KernelCase& c, const Options& o, CacheFlush& flush) {
  Measured m;
  Generator g(1234);
  Built b = build(c, o.device, g);
  auto drop_grads = [&] {
    for (Tensor& t : b.leaves) t.set_grad(Tensor());
  };
  // backward(r) for a fixed r with the output's (channels-last) layout: the
  // gradients of sum(out * r), without timing that product.
  Tensor probe = b.fwd();
  Tensor r = device_randn(probe.shape(), 1.0, o.device, g);
  probe.backward(r);
  m.finite = all_finite(probe);
  for (const Tensor& t : b.leaves) m.finite = m.finite && all_finite(t.grad());
  probe = Tensor();
  drop_grads();

  m.fwd = time_runs_on(o.device, o.warmup, o.repeat, [&] { flush(); }, [&] { (void)b.fwd(); });
  // Backward alone: the forward that records the graph runs untimed ahead.
  Tensor out;
  m.bwd = time_runs_on(
      o.device, o.warmup, o.repeat,
      [&] {
        drop_grads();
        out = b.fwd();
        flush();
      },
      [&] { out.backward(r); });
  return m;
}

// The device's copy bandwidth through the engine's copy (a dense
// device-to-device copy_ of a large buffer; read + written bytes counted).
struct CopyBandwidth {
  int64_t bytes = 0;
  Timing t;
  double gbps() const { return 2.0 * double(bytes) / (t.median_ms() * 1e6); }
};

CopyBandwidth measure_copy(const Options& o) {
  CopyBandwidth cb;
  const int64_t n = (o.device.is_cuda() ? int64_t(512) : int64_t(128)) << 20 >> 2;  // floats: 512 / 128 MiB
  cb.bytes = n * 4;
  Tensor src = device_full({n}, 1.0, o.device), dst = device_full({n}, 0.0, o.device);
  cb.t = time_runs_on(o.device, 2, std::max<int64_t>(o.repeat, 5), [] {}, [&] { dst.copy_(src); });
  return cb;
}

// ---------------------------------------------------------------- the competitor

struct Competitor {
  bool ok = false;
  std::string why;  // why it was skipped
  std::string version, device_name, backend;
  int64_t threads = 0;
  std::vector<Measured> cases;  // by case index; error set when a case failed
};

Competitor run_torch(const std::vector<KernelCase>& cases, const Options& o, int64_t flush_bytes) {
  Competitor tc;
  Json req = Json::object();
  req["device"] = torch_device(o.device);
  req["threads"] = o.threads;
  req["repeat"] = o.repeat;
  req["warmup"] = o.warmup;
  req["flush_bytes"] = flush_bytes;
  Json arr = Json::array();
  for (const KernelCase& c : cases) arr.push_back(c.to_json());
  req["cases"] = std::move(arr);
  CompetitorReply cr = run_competitor(o.python, "torch_kernels.py", req, thread_env(o.threads));
  if (!cr.ok) {
    tc.why = cr.why;
    return tc;
  }
  try {
    const Json& res = cr.reply;
    tc.version = res.at("torch").get<std::string>();
    tc.device_name = res.at("device_name").get<std::string>();
    tc.backend = res.at("backend").get<std::string>();
    tc.threads = res.at("threads").get<int64_t>();
    std::vector<std::string> names;
    for (const KernelCase& c : cases) names.push_back(c.name);
    for (ReplyCase& r : reply_cases(res, names, "fwd_ms", "bwd_ms"))
      tc.cases.push_back(Measured{std::move(r.first), std::move(r.second), r.finite, std::move(r.error)});
  } catch (const std::exception& e) {
    tc.why = "unexpected output from " + cr.script + ": " + e.what();
    tc.cases.clear();
    return tc;
  }
  tc.ok = true;
  return tc;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

}  // namespace

void kernels_usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_bench kernels [--device cpu|cuda|cuda:N] [--resolution R[,R...]] [--batch-size B]\n"
               "                         [--repeat N] [--warmup N] [--threads N] [--filter SUBSTRING]\n"
               "                         [--no-competitor] [--python PATH] [--json FILE] [--quick]\n"
               "\n"
               "Times the supernet's bandwidth-bound kernels at the shapes of the five\n"
               "OFA-MobileNetV3 stages (widths 24 40 80 112 160 at res/4 .. res/32), float32,\n"
               "activations channels-last:\n"
               "  - depthwise k 3/5/7, the weight stored 7x7 and the active kernel read as a\n"
               "    centre-crop view; stride 1 at 6 x width channels, and the stride-2 first\n"
               "    block of stages 24 40 80 160 at 6 x the incoming width;\n"
               "  - 1x1 expand and project convs (GEMMs) reading a leading slice (4 x width\n"
               "    of 6 x width) of the stored weight;\n"
               "  - batch norm in training mode fused with the stage's activation (ReLU or\n"
               "    h-swish; batch_norm_act, one pass each way), at 6 x width channels.\n"
               "Forward and backward (input and weight gradients, from a fixed output\n"
               "gradient, the graph recorded by an untimed forward) are timed separately:\n"
               "median over --repeat runs after --warmup runs; on a GPU with events on the\n"
               "compute stream, an L2-sized buffer overwritten before each run. GB/s counts\n"
               "the least traffic (input, active weight, output; backward: output gradient,\n"
               "input, weight, input and weight gradients); %%copy = GB/s over the copy\n"
               "bandwidth measured in the same run (the engine's copy of a large buffer on the\n"
               "device, read + write). The same cases run in PyTorch on the same device\n"
               "(benchmarks/torch_kernels.py: channels_last, cudnn.benchmark = True on a GPU,\n"
               "i.e. PyTorch's choice of cuDNN algorithm); ratio = torch / ours, above 1 we\n"
               "are faster. Without torch the competitor is skipped, visibly, exit status 0.\n"
               "\n"
               "  --device D          cuda or cuda:N (the default when a GPU is present) or cpu\n"
               "  --resolution LIST   comma-separated input resolutions (default 128,224)\n"
               "  --batch-size B      images per batch (default 64)\n"
               "  --repeat N          timed runs per measurement (default 10)\n"
               "  --warmup N          untimed runs before them (default 2)\n"
               "  --threads N         CPU threads for us and PyTorch (default: $OMP_NUM_THREADS\n"
               "                      or the cores, now %lld)\n"
               "  --filter SUBSTRING  only the cases whose name contains SUBSTRING\n"
               "  --no-competitor     do not run PyTorch\n"
               "  --python PATH       the competitor's interpreter (default $OFA_PYTHON, else\n"
               "                      /usr/bin/python3)\n"
               "  --json FILE         also write every number (all samples) to FILE\n"
               "  --quick             a smoke-test subset: stages 24 and 160 at the first\n"
               "                      resolution only\n",
               static_cast<long long>(default_threads()));
}

int kernels_main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<KernelCase> cases;
  for (KernelCase& c : make_cases(o.resolutions, o.batch, o.quick))
    if (o.filter.empty() || c.name.find(o.filter) != std::string::npos) cases.push_back(std::move(c));
  if (cases.empty()) throw UsageError("--filter '" + o.filter + "' matches no case (see ofa_bench kernels --help)");
  std::ofstream json_out;
  if (!o.json_path.empty()) {
    json_out.open(o.json_path);  // opened now so that a bad path fails before the run
    OFA_CHECK(json_out, "--json: cannot write ", o.json_path);
  }
  set_threads(o.threads);

  const std::string device_desc = device_description(o.device, o.threads);
  std::printf("ofa_bench kernels: device %s (%s), float32, batch %lld, resolution %s, %zu case%s%s,\n"
              "                   median of %lld run%s after %lld warmup\n",
              o.device.str().c_str(), o.device_why.c_str(), static_cast<long long>(o.batch),
              join(o.resolutions).c_str(), cases.size(), cases.size() == 1 ? "" : "s", o.quick ? " (--quick)" : "",
              static_cast<long long>(o.repeat), o.repeat == 1 ? "" : "s", static_cast<long long>(o.warmup));
  std::printf("device:      %s\n", device_desc.c_str());
  std::fflush(stdout);

  const CopyBandwidth copy = measure_copy(o);
  const double copy_gbps = copy.gbps();
  std::printf("copy:        %.1f GB/s (the engine's copy_ of %lld MiB on %s, read + write, median of %zu)\n",
              copy_gbps, static_cast<long long>(copy.bytes >> 20), o.device.str().c_str(), copy.t.samples_ms.size());
  std::fflush(stdout);

  // Larger than the L2 of any current GPU (50 MiB on H100/H200); CPUs: none
  // (most cases exceed their caches, and a CPU flush costs more than the case).
  const int64_t flush_bytes = o.device.is_cuda() ? int64_t(256) << 20 : 0;
  CacheFlush flush;
  if (flush_bytes) flush.buf = empty({flush_bytes / 4}, DType::F32, o.device);

  const bool progress = isatty(2);
  std::vector<Measured> ours;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (progress) std::fprintf(stderr, "\r[ofa-engine %zu/%zu] %-36s", i + 1, cases.size(), cases[i].name.c_str());
    ours.push_back(measure_ours(cases[i], o, flush));
  }
  if (progress) std::fprintf(stderr, "\r%*s\r", 70, "");
  flush.buf = Tensor();
  // The competitor's process gets the device memory our cache holds.
  if (o.device.is_cuda()) cuda_empty_cache(o.device.index);

  Competitor tc;
  if (o.competitor) {
    if (progress) std::fprintf(stderr, "[PyTorch] running %s benchmarks/torch_kernels.py ...", o.python.c_str());
    tc = run_torch(cases, o, flush_bytes);
    if (progress) std::fprintf(stderr, "\r%*s\r", 80, "");
  } else {
    tc.why = "--no-competitor";
  }
  if (tc.ok)
    std::printf("competitor:  PyTorch %s on %s (%s), threads %lld\n", tc.version.c_str(), tc.device_name.c_str(),
                tc.backend.c_str(), static_cast<long long>(tc.threads));
  else
    std::printf("competitor: skipped (%s)\n", tc.why.c_str());

  std::printf("\n%-30s %9s %7s %6s %9s %6s  %9s %7s %6s %9s %6s\n", "case", "ours fwd", "GB/s", "%copy", "torch fwd",
              "ratio", "ours bwd", "GB/s", "%copy", "torch bwd", "ratio");
  std::printf("%-30s %9s %7s %6s %9s %6s  %9s %7s %6s %9s %6s\n", "", "ms", "", "", "ms", "", "ms", "", "", "ms", "");
  Json report = Json::object();
  report["subcommand"] = "kernels";
  report["device"] = o.device.str();
  report["device_chosen_by"] = o.device_why;
  report["device_description"] = device_desc;
  report["emulated"] = o.device.is_cuda() && cuda_emulated();
  report["batch_size"] = o.batch;
  report["resolutions"] = o.resolutions;
  report["repeat"] = o.repeat;
  report["warmup"] = o.warmup;
  report["threads"] = o.threads;
  report["quick"] = o.quick;
  report["flush_bytes"] = flush_bytes;
  Json jcopy = Json::object();
  jcopy["bytes"] = copy.bytes;
  jcopy["time"] = timing_json(copy.t);
  jcopy["gbps"] = copy_gbps;
  report["copy_bandwidth"] = jcopy;
  Json jt = Json::object();
  jt["present"] = tc.ok;
  if (tc.ok) {
    jt["torch"] = tc.version;
    jt["device_name"] = tc.device_name;
    jt["backend"] = tc.backend;
    jt["threads"] = tc.threads;
    jt["python"] = o.python;
  } else {
    jt["skipped_because"] = tc.why;
  }
  report["competitor"] = jt;

  std::vector<std::string> notes;
  bool all_finite_ours = true;
  // Ratios per kind, for the geometric means.
  std::vector<std::string> kinds = {"depthwise", "pointwise", "bn_act"};
  std::vector<std::vector<double>> r_fwd(kinds.size()), r_bwd(kinds.size());
  Json jcases = Json::array();
  for (size_t i = 0; i < cases.size(); ++i) {
    const KernelCase& c = cases[i];
    const Measured& m = ours[i];
    const Measured* t = tc.ok && tc.cases[i].error.empty() ? &tc.cases[i] : nullptr;
    if (tc.ok && !tc.cases[i].error.empty()) notes.push_back(c.name + ": torch failed: " + tc.cases[i].error);
    const double of = m.fwd.median_ms(), ob = m.bwd.median_ms();
    const double gf = c.bytes_fwd() / (of * 1e6), gb = c.bytes_bwd() / (ob * 1e6);
    const double tf = t ? t->fwd.median_ms() : std::nan(""), tb = t ? t->bwd.median_ms() : std::nan("");
    const double rf = tf / of, rb = tb / ob;
    if (t) {
      const size_t k = static_cast<size_t>(std::find(kinds.begin(), kinds.end(), c.kind) - kinds.begin());
      r_fwd[k].push_back(rf);
      r_bwd[k].push_back(rb);
    }
    std::printf("%-30s %9s %7s %6s %9s %6s  %9s %7s %6s %9s %6s\n", c.name.c_str(), cell("%.3f", of).c_str(),
                cell("%.1f", gf).c_str(), cell("%.0f%%", 100 * gf / copy_gbps).c_str(), cell("%.3f", tf).c_str(),
                cell("%.2f", rf).c_str(), cell("%.3f", ob).c_str(), cell("%.1f", gb).c_str(),
                cell("%.0f%%", 100 * gb / copy_gbps).c_str(), cell("%.3f", tb).c_str(), cell("%.2f", rb).c_str());
    if (!m.finite) {
      all_finite_ours = false;
      notes.push_back(c.name + ": ofa-engine output or gradient is not finite");
    }
    if (t && !t->finite) notes.push_back(c.name + ": torch output or gradient is not finite");
    Json jc = c.to_json();
    jc["what"] = c.what;
    jc["bytes_fwd"] = c.bytes_fwd();
    jc["bytes_bwd"] = c.bytes_bwd();
    jc["flops_fwd"] = c.flops_fwd();
    jc["flops_bwd"] = c.flops_bwd();
    Json jo = Json::object();
    jo["fwd"] = timing_json(m.fwd);
    jo["bwd"] = timing_json(m.bwd);
    jo["gbps_fwd"] = gf;
    jo["gbps_bwd"] = gb;
    jo["copy_fraction_fwd"] = gf / copy_gbps;
    jo["copy_fraction_bwd"] = gb / copy_gbps;
    jo["finite"] = m.finite;
    jc["ours"] = jo;
    if (t) {
      Json jtc = Json::object();
      jtc["fwd"] = timing_json(t->fwd);
      jtc["bwd"] = timing_json(t->bwd);
      jtc["gbps_fwd"] = c.bytes_fwd() / (tf * 1e6);
      jtc["gbps_bwd"] = c.bytes_bwd() / (tb * 1e6);
      jtc["finite"] = t->finite;
      jc["competitor"] = jtc;
      jc["ratio_fwd"] = rf;
      jc["ratio_bwd"] = rb;
    } else {
      jc["competitor"] = Json();
    }
    jcases.push_back(jc);
  }
  report["cases"] = jcases;
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  Json jgm = Json::object();
  bool any_ratio = false;
  for (size_t k = 0; k < kinds.size(); ++k) {
    if (r_fwd[k].empty()) continue;
    if (!any_ratio) std::printf("\ngeometric mean of torch / ours (>1: ofa-engine is faster):\n");
    any_ratio = true;
    const double gm_f = geometric_mean(r_fwd[k]), gm_b = geometric_mean(r_bwd[k]);
    std::printf("  %-10s over %3zu cases: fwd %.2f, bwd %.2f\n", kinds[k].c_str(), r_fwd[k].size(), gm_f, gm_b);
    Json g = Json::object();
    g["cases"] = r_fwd[k].size();
    g["fwd"] = gm_f;
    g["bwd"] = gm_b;
    jgm[kinds[k]] = g;
  }
  if (!any_ratio) std::printf("\nno ratios: the competitor was skipped\n");
  report["geomean_ratio"] = jgm;
  report["all_finite"] = all_finite_ours;
  if (json_out.is_open()) {
    json_out << report.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    json_out.close();
    OFA_CHECK(json_out, "--json: writing ", o.json_path, " failed");
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  return all_finite_ours ? 0 : 1;
}

}  // namespace ofa::bench
