#include "benchmarks/data_bench.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "benchmarks/bench_util.h"
#include "data/loader.h"

namespace ofa::bench {

namespace {

struct DataOptions {
  std::string data_path;
  int64_t image_size = 224;
  int64_t batch_size = 64;
  int64_t workers = 0;  // set from the cores
  int64_t batches = 50;
  int64_t warmup = 3;
  bool torch = true;
  std::string python;
  std::string json_path;
};

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int64_t>(n) : 1;
}

DataOptions parse_data(int argc, char** argv) {
  DataOptions o;
  o.workers = cores();
  o.python = default_python();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      data_usage(stdout);
      std::exit(0);
    }
    if (a == "--no-torch") {
      o.torch = false;
      continue;
    }
    const bool takes_value = a == "--data-path" || a == "--image-size" || a == "--batch-size" || a == "--workers" ||
                             a == "--batches" || a == "--warmup" || a == "--python" || a == "--json";
    if (!takes_value) throw UsageError("unknown option '" + a + "' for 'ofa_bench data' (see ofa_bench data --help)");
    if (i + 1 >= argc) throw UsageError(a + " needs a value (see ofa_bench data --help)");
    const std::string v = argv[++i];
    if (a == "--data-path") o.data_path = v;
    else if (a == "--image-size") o.image_size = parse_int_arg(a, v, 1);
    else if (a == "--batch-size") o.batch_size = parse_int_arg(a, v, 1);
    else if (a == "--workers") o.workers = parse_int_arg(a, v, 0);
    else if (a == "--batches") o.batches = parse_int_arg(a, v, 1);
    else if (a == "--warmup") o.warmup = parse_int_arg(a, v, 0);
    else if (a == "--python") o.python = v;
    else if (a == "--json") o.json_path = v;
  }
  if (o.data_path.empty()) throw UsageError("--data-path DIR is required (see ofa_bench data --help)");
  return o;
}

struct OursResult {
  int64_t images = 0;
  double seconds = 0;
  int64_t skipped = 0;
  std::vector<data::DataLoader::WorkerStats> workers;
};

OursResult run_ours(const std::string& root, const DataOptions& o) {
  auto ds = std::make_shared<data::ImageFolderDataset>(root);
  data::LoaderOptions lo;
  lo.mode = data::LoaderMode::Train;
  lo.batch_size = o.batch_size;
  lo.image_size = {o.image_size};
  lo.n_worker = o.workers;
  data::DataLoader dl(ds, data::DistributedSampler(ds->size()), lo);
  OursResult r;
  int64_t epoch = 0, done = 0;
  dl.set_epoch(epoch);
  data::Batch b;
  auto t0 = std::chrono::steady_clock::now();  // restarted after the warmup batches
  while (done < o.warmup + o.batches) {
    if (!dl.next(b)) {
      r.skipped += dl.skipped_this_epoch();
      dl.set_epoch(++epoch);
      continue;
    }
    if (done >= o.warmup) r.images += b.size();
    ++done;
    if (done == o.warmup) t0 = std::chrono::steady_clock::now();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.skipped += dl.skipped_this_epoch();
  r.workers = dl.worker_stats();
  return r;
}

struct TorchResult {
  bool ok = false;
  std::string why, versions;
  int64_t images = 0;
  double seconds = 0, images_per_s = NAN;
};

TorchResult run_torch(const std::string& root, const DataOptions& o) {
  TorchResult tr;
  Json req = Json::object();
  req["root"] = root;
  req["image_size"] = o.image_size;
  req["batch_size"] = o.batch_size;
  req["workers"] = o.workers;
  req["batches"] = o.batches;
  req["warmup"] = o.warmup;
  req["resize_scale"] = 0.08;
  CompetitorReply cr = run_competitor(o.python, "torch_data.py", req);
  if (!cr.ok) {
    tr.why = cr.why;
    return tr;
  }
  const Json& res = cr.reply;
  const std::string& script = cr.script;
  try {
    tr.versions = "torch " + res.at("torch").get<std::string>() + ", torchvision " +
                  res.at("torchvision").get<std::string>() + ", PIL " + res.at("pil").get<std::string>();
    tr.images = res.at("images").get<int64_t>();
    tr.seconds = res.at("seconds").get<double>();
    tr.images_per_s = tr.seconds > 0 ? tr.images / tr.seconds : NAN;
  } catch (const std::exception& e) {
    tr.why = std::string("unexpected output from ") + script + ": " + e.what();
    return tr;
  }
  tr.ok = true;
  return tr;
}

}  // namespace

void data_usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_bench data --data-path DIR [--image-size 224] [--batch-size 64]\n"
               "                      [--workers N] [--batches N] [--warmup N] [--no-torch]\n"
               "                      [--python PATH] [--json FILE]\n"
               "\n"
               "Times the training input pipeline on an ImageFolder tree (DIR/train when it\n"
               "exists, else DIR): JPEG decode + RandomResizedCrop(R, scale=(0.08, 1)) +\n"
               "horizontal flip + ToTensor + Normalize, batched by the DataLoader's worker\n"
               "threads; then, in the same run, the same work through PIL + torchvision's\n"
               "ImageFolder and torch's DataLoader with the same worker count\n"
               "(benchmarks/torch_data.py). Reports images/s: total (images delivered over\n"
               "the wall time after --warmup batches) and per worker (images over the time\n"
               "that worker spent building batches, warmup included); ratio = ours / torch,\n"
               "above 1 we are faster.\n"
               "\n"
               "  --data-path DIR    the image tree (required)\n"
               "  --image-size R     training resolution (default 224)\n"
               "  --batch-size N     images per batch (default 64)\n"
               "  --workers N        loader workers for both (default: the cores, now %lld;\n"
               "                     0 = in the consumer's thread/process)\n"
               "  --batches N        timed batches (default 50; epochs restart as needed)\n"
               "  --warmup N         untimed batches first (default 3)\n"
               "  --no-torch         do not run the PyTorch competitor\n"
               "  --python PATH      interpreter for the competitor (default $OFA_PYTHON, else\n"
               "                     /usr/bin/python3)\n"
               "  --json FILE        also write the numbers to FILE\n",
               static_cast<long long>(cores()));
}

int data_main(int argc, char** argv) {
  DataOptions o = parse_data(argc, argv);
  const std::string root = is_dir(o.data_path + "/train") ? o.data_path + "/train" : o.data_path;
  if (!is_dir(root)) throw UsageError("--data-path " + o.data_path + " is not a folder");
  std::ofstream json_out;
  if (!o.json_path.empty()) {
    json_out.open(o.json_path);
    OFA_CHECK(json_out, "--json: cannot write ", o.json_path);
  }
  const data::ImageFolder listing(root);
  std::printf("ofa_bench data: %s (%lld images, %lld classes)\n", root.c_str(),
              static_cast<long long>(listing.size()), static_cast<long long>(listing.num_classes()));
  std::printf("training transforms at %lldx%lld, batch %lld, %lld worker%s, %lld batches after %lld warmup\n",
              static_cast<long long>(o.image_size), static_cast<long long>(o.image_size),
              static_cast<long long>(o.batch_size), static_cast<long long>(o.workers), o.workers == 1 ? "" : "s",
              static_cast<long long>(o.batches), static_cast<long long>(o.warmup));
  std::printf("CPU:        %s (%lld cores)\n", cpu_model().c_str(), static_cast<long long>(cores()));
  std::fflush(stdout);

  const bool progress = isatty(2);
  if (progress) std::fprintf(stderr, "[ofa-engine] loading ...");
  const OursResult ours = run_ours(root, o);
  if (progress) std::fprintf(stderr, "\r%*s\r", 40, "");
  const double ours_ips = ours.seconds > 0 ? ours.images / ours.seconds : NAN;
  std::printf("\nofa-engine: %8.1f images/s total (%lld images in %.3f s); skipped files: %lld\n", ours_ips,
              static_cast<long long>(ours.images), ours.seconds, static_cast<long long>(ours.skipped));
  Json jw = Json::array();
  for (size_t w = 0; w < ours.workers.size(); ++w) {
    const auto& s = ours.workers[w];
    const double ips = s.busy_s > 0 ? s.images / s.busy_s : NAN;
    std::printf("  %-9s %8.1f images/s busy (%lld images, %lld batches, %.3f s)\n",
                (o.workers == 0 ? std::string("main") : "worker " + std::to_string(w)).c_str(), ips,
                static_cast<long long>(s.images), static_cast<long long>(s.batches), s.busy_s);
    Json j = Json::object();
    j["images"] = s.images;
    j["batches"] = s.batches;
    j["busy_s"] = s.busy_s;
    j["images_per_s"] = ips;
    jw.push_back(j);
  }

  TorchResult tr;
  if (o.torch) {
    if (progress) std::fprintf(stderr, "[PyTorch] running %s benchmarks/torch_data.py ...", o.python.c_str());
    tr = run_torch(root, o);
    if (progress) std::fprintf(stderr, "\r%*s\r", 80, "");
  } else {
    tr.why = "--no-torch";
  }
  if (tr.ok) {
    std::printf("PyTorch:    %8.1f images/s total (%lld images in %.3f s; %s via %s, DataLoader num_workers=%lld)\n",
                tr.images_per_s, static_cast<long long>(tr.images), tr.seconds, tr.versions.c_str(),
                o.python.c_str(), static_cast<long long>(o.workers));
    std::printf("ratio:      %.2fx (ours / torch images/s; above 1 we are faster)\n", ours_ips / tr.images_per_s);
  } else {
    std::printf("PyTorch:    torch column absent: %s\n", tr.why.c_str());
  }

  if (json_out.is_open()) {
    Json report = Json::object();
    report["subcommand"] = "data";
    report["root"] = root;
    report["dataset_size"] = listing.size();
    report["image_size"] = o.image_size;
    report["batch_size"] = o.batch_size;
    report["workers"] = o.workers;
    report["batches"] = o.batches;
    report["warmup"] = o.warmup;
    report["cpu"] = cpu_model();
    Json jo = Json::object();
    jo["images"] = ours.images;
    jo["seconds"] = ours.seconds;
    jo["images_per_s"] = ours_ips;
    jo["skipped_files"] = ours.skipped;
    jo["workers"] = jw;
    report["ours"] = jo;
    Json jt = Json::object();
    jt["present"] = tr.ok;
    if (tr.ok) {
      jt["versions"] = tr.versions;
      jt["images"] = tr.images;
      jt["seconds"] = tr.seconds;
      jt["images_per_s"] = tr.images_per_s;
      jt["ratio_ours_over_torch"] = ours_ips / tr.images_per_s;
    } else {
      jt["absent_because"] = tr.why;
    }
    report["torch"] = jt;
    json_out << report.dump(2) << "\n";
  }
  return 0;
}

}  // namespace ofa::bench
