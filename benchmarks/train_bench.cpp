#include "benchmarks/train_bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "benchmarks/bench_util.h"
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "nn/optim.h"
#include "ofa/eval_tensors.h"
#include "ofa/ofa_mbv3.h"

namespace ofa::bench {
namespace {

struct Options {
  std::string subnet = "max";  // max | min | FILE.json
  int64_t image_size = 32, batch_size = 64, steps = 20, warmup = 3, n_classes = 10;
  int64_t threads = default_threads();
  Device device = Device::cpu();
  bool torch = true;
  std::string python = default_python();
  std::string json_path;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      train_usage(stdout);
      std::exit(0);
    }
    if (a == "--no-torch") {
      o.torch = false;
      continue;
    }
    if (i + 1 >= argc) throw UsageError(a + " needs a value, or is unknown (see ofa_bench train --help)");
    const std::string v = argv[++i];
    if (a == "--subnet") o.subnet = v;
    else if (a == "--image-size") o.image_size = parse_int_arg(a, v, 8);
    else if (a == "--batch-size") o.batch_size = parse_int_arg(a, v, 2);
    else if (a == "--steps") o.steps = parse_int_arg(a, v, 1);
    else if (a == "--warmup") o.warmup = parse_int_arg(a, v, 0);
    else if (a == "--classes") o.n_classes = parse_int_arg(a, v, 2);
    else if (a == "--threads") o.threads = parse_int_arg(a, v, 1);
    else if (a == "--device") o.device = parse_device(v);
    else if (a == "--python") o.python = v;
    else if (a == "--json") o.json_path = v;
    else throw UsageError("unknown option '" + a + "' for 'ofa_bench train' (see ofa_bench train --help)");
  }
  return o;
}

double max_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

struct Run {
  Timing t;
  std::vector<double> losses;
  double peak_mib = 0;  // CPU: the process's resident peak so far; GPU: the allocator's peak during the run
};

// Times steps of `net` (any module with forward, on o.device) on fixed data:
// each step alone, with the host clock on the CPU and events on the GPU's
// compute stream (the step ends with the loss read back, as PyTorch's does).
template <class Net>
Run time_training(Net& net, const Tensor& x, const Tensor& y, const Options& o) {
  nn::ParamGroup hyper;
  hyper.lr = 0.05;
  hyper.momentum = 0.9;
  hyper.nesterov = true;
  hyper.weight_decay = 3e-5;
  nn::SGD opt(nn::make_param_groups(net.named_parameters(), {"bn", "bias"}, hyper));
  net.train();
  Run r;
  if (o.device.is_cuda()) cuda_reset_peak(o.device.index);
  r.t = time_runs_on(o.device, o.warmup, o.steps, [] {}, [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(net.forward(x), y, 0.1);
    loss.backward();
    opt.step();
    r.losses.push_back(loss.item());
  });
  r.losses.erase(r.losses.begin(), r.losses.begin() + o.warmup);
  r.peak_mib = o.device.is_cuda() ? static_cast<double>(cuda_memory_stats(o.device.index).peak_allocated) / (1 << 20)
                                  : max_rss_mib();
  return r;
}

double images_per_s(const Timing& t, int64_t batch) { return batch * 1e3 / t.median_ms(); }

}  // namespace

void train_usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_bench train [--subnet max|min|FILE.json] [--image-size R] [--batch-size B]\n"
               "                       [--steps N] [--warmup N] [--classes K] [--threads N]\n"
               "                       [--device cpu|cuda] [--no-torch] [--python PATH] [--json FILE]\n"
               "\n"
               "Training throughput of one OFA-MobileNetV3 subnet: forward, label-smoothed\n"
               "cross-entropy, backward and an SGD (Nesterov) step on a fixed random batch,\n"
               "float32. Timed twice for the engine: as the supernet trains it (the elastic\n"
               "layers reading the active slices of the full weights) and as the extracted\n"
               "static subnet. In the same run PyTorch trains the same static network\n"
               "(benchmarks/torch_train.py, NCHW as the reference). Reports the median step,\n"
               "images/s, ratio = ours / torch (above 1 we are faster) and peak memory (resident\n"
               "on the CPU; on a GPU the device memory the allocators handed out).\n"
               "\n"
               "  --subnet S      max (K7 E6 D4, default), min (K3 E3 D2), or a subnet JSON file\n"
               "                  ({\"ks\": [20], \"e\": [20], \"d\": [5]}, the reference's form)\n"
               "  --image-size R  input resolution (default 32)\n"
               "  --batch-size B  images per step (default 64)\n"
               "  --steps N       timed steps (default 20); --warmup N untimed steps first (default 3)\n"
               "  --classes K     classifier outputs (default 10, Fashion-MNIST)\n"
               "  --threads N     OpenMP/OpenBLAS threads, torch.set_num_threads for PyTorch\n"
               "                  (default: $OMP_NUM_THREADS or the cores, now %lld)\n"
               "  --device D      cpu (default), cuda or cuda:N (PyTorch on the same device, cudnn.benchmark,\n"
               "                  no TF32; steps timed with events)\n"
               "  --no-torch      do not run the PyTorch competitor\n"
               "  --python PATH   the competitor's interpreter (default $OFA_PYTHON, else /usr/bin/python3)\n"
               "  --json FILE     also write every number to FILE\n",
               static_cast<long long>(default_threads()));
}

int train_main(int argc, char** argv) {
  Options o = parse(argc, argv);
  set_threads(o.threads);
  Generator g(0);
  nn::OFAMobileNetV3 super(o.n_classes, 0.1, 1e-5, 0.1, 1.0, {3, 5, 7}, {3, 4, 6}, {2, 3, 4}, &g);
  if (o.subnet == "max") super.set_max_net();
  else if (o.subnet == "min") super.set_min_net();
  else super.set_active_subnet(nn::read_subnet_file(o.subnet).setting);
  const nn::NetInfo info = super.active_net_info(o.image_size);
  std::printf("ofa_bench train: subnet %s, %lld x 3 x %lld x %lld, %lld classes, threads %lld, median of %lld steps "
              "after %lld warmup\n",
              o.subnet.c_str(), static_cast<long long>(o.batch_size), static_cast<long long>(o.image_size),
              static_cast<long long>(o.image_size), static_cast<long long>(o.n_classes),
              static_cast<long long>(o.threads), static_cast<long long>(o.steps), static_cast<long long>(o.warmup));
  std::printf("network:  %s\n          %.3f M parameters, %.2f M MACs per image\n",
              nn::subnet_json_line(super.active_setting(), o.image_size).c_str(), info.params / 1e6, info.macs / 1e6);
  std::printf("device:   %s\n", device_description(o.device, o.threads).c_str());
  std::fflush(stdout);

  const Shape xs{o.batch_size, 3, o.image_size, o.image_size};
  Tensor x = empty(xs, DType::F32, o.device, MemoryFormat::ChannelsLast);
  x.copy_(randn(xs, DType::F32, &g));
  Tensor yh = empty({o.batch_size}, DType::I64);
  for (int64_t i = 0; i < o.batch_size; ++i) yh.data<int64_t>()[i] = i % o.n_classes;
  const Tensor y = yh.to(o.device);
  super.to(o.device);

  const bool progress = isatty(2);
  if (progress) std::fprintf(stderr, "[ofa-engine] supernet ...");
  Run dyn = time_training(super, x, y, o);
  if (progress) std::fprintf(stderr, "\r[ofa-engine] static subnet ...");
  auto sub = super.get_active_subnet();
  sub->to(o.device);
  Run sta = time_training(*sub, x, y, o);
  if (progress) std::fprintf(stderr, "\r%*s\r", 40, "");

  Json torch_res;
  std::string why;
  if (o.torch) {
    if (progress) std::fprintf(stderr, "[PyTorch] running %s benchmarks/torch_train.py ...", o.python.c_str());
    Json req = Json::object();
    req["net_config"] = Json::parse(sub->config().dump());
    req["image_size"] = o.image_size;
    req["batch_size"] = o.batch_size;
    req["steps"] = o.steps;
    req["warmup"] = o.warmup;
    req["threads"] = o.threads;
    req["label_smoothing"] = 0.1;
    req["lr"] = 0.05;
    req["momentum"] = 0.9;
    req["weight_decay"] = 3e-5;
    req["device"] = torch_device(o.device);
    CompetitorReply cr = run_competitor(o.python, "torch_train.py", req, thread_env(o.threads));
    if (progress) std::fprintf(stderr, "\r%*s\r", 80, "");
    if (cr.ok) torch_res = cr.reply;
    else why = cr.why;
  } else {
    why = "--no-torch";
  }
  Timing tt;
  if (why.empty()) {
    tt.samples_ms = torch_res["step_ms"].get<std::vector<double>>();
    std::printf("PyTorch:  %s via %s on %s (%s), threads %lld, NCHW\n", torch_res["torch"].get<std::string>().c_str(),
                o.python.c_str(), torch_res.value("device_name", std::string("?")).c_str(),
                torch_res.value("backend", std::string("?")).c_str(),
                static_cast<long long>(torch_res["threads"].get<int64_t>()));
  } else {
    std::printf("PyTorch:  torch column absent: %s\n", why.c_str());
  }

  const double torch_ips = why.empty() ? images_per_s(tt, o.batch_size) : NAN;
  std::printf("\n%-26s %10s %10s %12s %14s\n", "what", "step ms", "images/s", "ours/torch",
              o.device.is_cuda() ? "peak GPU MiB" : "peak RSS MiB");
  auto row = [&](const char* what, const Timing& t, double rss) {
    const double ips = images_per_s(t, o.batch_size);
    std::printf("%-26s %10.2f %10.1f %12s %14.0f\n", what, t.median_ms(), ips,
                why.empty() ? (std::to_string(ips / torch_ips).substr(0, 5) + "x").c_str() : "-", rss);
  };
  row("ofa-engine supernet", dyn.t, dyn.peak_mib);
  row("ofa-engine static subnet", sta.t, sta.peak_mib);
  if (why.empty())
    std::printf("%-26s %10.2f %10.1f %12s %14.0f\n", "PyTorch static subnet", tt.median_ms(), torch_ips, "1.000x",
                torch_res.value("peak_mib", torch_res["max_rss_mib"].get<double>()));
  for (const Run* r : {&dyn, &sta})
    for (double l : r->losses)
      if (!std::isfinite(l)) throw Error("a training loss was not finite");

  if (!o.json_path.empty()) {
    Json rep = Json::object();
    rep["subcommand"] = "train";
    rep["subnet"] = o.subnet;
    rep["image_size"] = o.image_size;
    rep["batch_size"] = o.batch_size;
    rep["threads"] = o.threads;
    rep["device"] = o.device.str();
    rep["ours_supernet_ms"] = dyn.t.samples_ms;
    rep["ours_static_ms"] = sta.t.samples_ms;
    rep["ours_supernet_peak_mib"] = dyn.peak_mib;
    rep["ours_static_peak_mib"] = sta.peak_mib;
    rep["ours_peak_rss_mib"] = max_rss_mib();
    if (why.empty()) rep["torch"] = torch_res;
    else rep["torch_absent"] = why;
    std::FILE* f = std::fopen(o.json_path.c_str(), "w");
    OFA_CHECK(f, "--json: cannot write ", o.json_path);
    std::fprintf(f, "%s\n", rep.dump(1).c_str());
    std::fclose(f);
  }
  return 0;
}

}  // namespace ofa::bench
