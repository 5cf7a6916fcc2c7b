#include "ofa/eval_tensors.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "ofa/bn_calibration.h"
#include "ofa/eval_data.h"
#include "ofa/eval_report.h"
#include "ofa/run_config.h"
#include "ofa/run_manager.h"

namespace ofa::nn {

namespace {

json num(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return json(static_cast<int64_t>(v));
  return json(v);
}

const std::string& meta_at(const SafetensorsMetadata& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  OFA_CHECK(it != m.end(), "'", path, "': checkpoint metadata lacks '", key,
            "' (write checkpoints with save_supernet_checkpoint / save_static_checkpoint, or convert PyTorch ones "
            "with tools/convert_pytorch_checkpoint.py)");
  return it->second;
}

json meta_json(const SafetensorsMetadata& m, const std::string& key, const std::string& path) {
  const std::string& text = meta_at(m, key, path);
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    throw Error(str_cat("'", path, "': metadata '", key, "' is not valid JSON (", e.what(), "): ", text));
  }
}

template <class T>
std::vector<T> json_list(const json& j, const std::string& what, const std::string& path) {
  OFA_CHECK(j.is_array() && !j.empty(), "'", path, "': metadata '", what, "' must be a non-empty JSON list, got ",
            j.dump());
  std::vector<T> out;
  for (const auto& v : j) {
    OFA_CHECK(v.is_number(), "'", path, "': metadata '", what, "' must hold numbers, got ", j.dump());
    out.push_back(v.get<T>());
  }
  return out;
}

std::string read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  OFA_CHECK(in.good(), what, " '", path, "' cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The reference's display: parameters to 3 decimals of a million, MACs to 2.
std::string human(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*fM", decimals, v);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------- checkpoints

SafetensorsMetadata supernet_metadata(const OFAMobileNetV3& net) {
  json e = json::array();
  for (double x : net.expand_ratio_list) e.push_back(num(x));
  const json bn = net.get_bn_param();
  return {{"format", kSupernetFormat},
          {"n_classes", std::to_string(net.classifier->out_features)},
          {"width_mult", json(net.width_mult).dump()},
          {"ks_list", json(net.ks_list).dump()},
          {"expand_ratio_list", e.dump()},
          {"depth_list", json(net.depth_list).dump()},
          {"bn_momentum", bn["momentum"].dump()},
          {"bn_eps", bn["eps"].dump()},
          {"dropout_rate", json(net.classifier->dropout_rate).dump()}};
}

SafetensorsMetadata static_net_metadata(const MobileNetV3& net) {
  return {{"format", kStaticNetFormat}, {"net_config", net.config().dump()}};
}

void save_supernet_checkpoint(const std::string& path, const OFAMobileNetV3& net, const SafetensorsMetadata& extra) {
  SafetensorsMetadata m = extra;
  for (auto& [k, v] : supernet_metadata(net)) m[k] = v;
  save_module_state(path, net, m);
}

void save_static_checkpoint(const std::string& path, const MobileNetV3& net, const SafetensorsMetadata& extra) {
  SafetensorsMetadata m = extra;
  for (auto& [k, v] : static_net_metadata(net)) m[k] = v;
  save_module_state(path, net, m);
}

Module& NetCheckpoint::module() const {
  if (supernet) return *supernet;
  OFA_CHECK(static_net != nullptr, "NetCheckpoint: no network loaded");
  return *static_net;
}

Tensor NetCheckpoint::forward(const Tensor& x) const { return supernet ? supernet->forward(x) : static_net->forward(x); }

int64_t NetCheckpoint::n_classes() const {
  return supernet ? supernet->classifier->out_features : static_net->classifier->out_features;
}

NetCheckpoint net_checkpoint_from_file(const SafetensorsFile& file_in) {
  // A training checkpoint (ofa/run_manager.h) also holds the optimizer's
  // state under "optimizer/...": the network is the rest.
  SafetensorsFile net_only;
  const bool training = file_in.metadata.count(kTrainStateKey) > 0;
  if (training) {
    net_only.path = file_in.path;
    net_only.metadata = file_in.metadata;
    for (const auto& kv : file_in.tensors)
      if (kv.first.rfind(kOptimizerPrefix, 0) != 0) net_only.tensors.push_back(kv);
  }
  const SafetensorsFile& file = training ? net_only : file_in;
  NetCheckpoint ck;
  ck.path = file.path;
  ck.metadata = file.metadata;
  const std::string& format = meta_at(file.metadata, "format", file.path);
  if (format == kSupernetFormat) {
    const auto& p = file.path;
    const json wm = meta_json(file.metadata, "width_mult", p);
    OFA_CHECK(wm.is_number(), "'", p, "': metadata 'width_mult' must be a number, got ", wm.dump());
    const json nc = meta_json(file.metadata, "n_classes", p);
    OFA_CHECK(nc.is_number_integer() && nc.get<int64_t>() >= 1, "'", p,
              "': metadata 'n_classes' must be a positive integer, got ", nc.dump());
    auto opt_num = [&](const char* key, double def) {
      if (!file.metadata.count(key)) return def;
      const json j = meta_json(file.metadata, key, p);
      OFA_CHECK(j.is_number(), "'", p, "': metadata '", key, "' must be a number, got ", j.dump());
      return j.get<double>();
    };
    ck.supernet = std::make_shared<OFAMobileNetV3>(
        nc.get<int64_t>(), opt_num("bn_momentum", 0.1), opt_num("bn_eps", 1e-5), opt_num("dropout_rate", 0.1),
        wm.get<double>(), json_list<int64_t>(meta_json(file.metadata, "ks_list", p), "ks_list", p),
        json_list<double>(meta_json(file.metadata, "expand_ratio_list", p), "expand_ratio_list", p),
        json_list<int64_t>(meta_json(file.metadata, "depth_list", p), "depth_list", p));
    SafetensorsFile mapped;
    mapped.path = file.path;
    mapped.metadata = file.metadata;
    try {
      mapped.tensors = ck.supernet->map_reference_keys(file.tensors);
    } catch (const Error& e) {
      throw Error(str_cat("'", file.path, "': ", e.what()));
    }
    load_module_state(*ck.supernet, mapped);
  } else if (format == kStaticNetFormat) {
    ck.static_net = MobileNetV3::build_from_config(meta_json(file.metadata, "net_config", file.path));
    load_module_state(*ck.static_net, file);
  } else {
    OFA_CHECK(false, "'", file.path, "': unknown checkpoint format '", format, "' (expected '", kSupernetFormat,
              "' or '", kStaticNetFormat, "')");
  }
  ck.module().eval();
  return ck;
}

NetCheckpoint load_net_checkpoint(const std::string& path) { return net_checkpoint_from_file(load_safetensors(path)); }

// ---------------------------------------------------------------- subnet JSON

SubnetSpec parse_subnet_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(str_cat(where, ": not valid JSON (", e.what(), ")"));
  }
  OFA_CHECK(j.is_object(), where, ": a subnet must be a JSON object {\"ks\": [...], \"e\": [...], \"d\": [...], \"r\": [R]}");
  for (auto it = j.begin(); it != j.end(); ++it)
    OFA_CHECK(it.key() == "ks" || it.key() == "e" || it.key() == "d" || it.key() == "r", where, ": unknown key '",
              it.key(), "' (a subnet has ks, e, d and optionally r)");
  SubnetSpec s;
  auto ints = [&](const char* key, std::vector<int64_t>& out) {
    OFA_CHECK(j.contains(key), where, ": the subnet lacks '", key, "'");
    OFA_CHECK(j[key].is_array(), where, ": '", key, "' must be a list, got ", j[key].dump());
    for (const auto& v : j[key]) {
      OFA_CHECK(v.is_number() && std::nearbyint(v.get<double>()) == v.get<double>(), where, ": '", key,
                "' must hold integers, got ", j[key].dump());
      out.push_back(static_cast<int64_t>(v.get<double>()));
    }
  };
  ints("ks", s.setting.ks);
  ints("d", s.setting.d);
  OFA_CHECK(j.contains("e"), where, ": the subnet lacks 'e'");
  OFA_CHECK(j["e"].is_array(), where, ": 'e' must be a list, got ", j["e"].dump());
  for (const auto& v : j["e"]) {
    OFA_CHECK(v.is_number(), where, ": 'e' must hold numbers, got ", j["e"].dump());
    s.setting.e.push_back(v.get<double>());
  }
  if (j.contains("r")) {
    const json& r = j["r"];
    const json& r0 = r.is_array() && r.size() == 1 ? r[0] : r;
    OFA_CHECK(r0.is_number_integer() && r0.get<int64_t>() >= 1, where, ": 'r' must be [R] with R >= 1, got ", r.dump());
    s.resolution = r0.get<int64_t>();
  }
  return s;
}

SubnetSpec read_subnet_file(const std::string& path) { return parse_subnet_json(read_text(path, "subnet file"), "'" + path + "'"); }

std::string subnet_json_line(const SubnetSetting& s, int64_t resolution) {
  auto list = [](const auto& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + num(static_cast<double>(v[i])).dump();
    return out + "]";
  };
  std::string out = "{\"ks\": " + list(s.ks) + ", \"e\": " + list(s.e) + ", \"d\": " + list(s.d);
  if (resolution > 0) out += ", \"r\": [" + std::to_string(resolution) + "]";
  return out + "}";
}

// ---------------------------------------------------------------- actions

namespace {

// The images of an action: [N, 3, R, R] of the network's dtype (float32 for
// every checkpoint; float64 where a test converts the network).
void check_images(const Tensor& x, const std::string& what, DType want = DType::F32) {
  OFA_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(0) >= 1, what, ": 'images' must be [N, 3, R, R], got ",
            shape_str(x.shape()));
  OFA_CHECK(x.dtype() == want, what, ": 'images' must be ", want == DType::F32 ? "float32 (F32)" : dtype_name(want),
            " as the network's weights, got ", dtype_name(x.dtype()));
}

}  // namespace

Tensor eval_logits(const NetCheckpoint& ck, const Tensor& images) {
  check_images(images, "eval_logits", ck.module().dtype());
  NoGradGuard ng;
  ck.module().eval();
  return ck.forward(images.to(ck.module().device()));
}

void recalibrate_bn(const NetCheckpoint& ck, const Tensor& images, int64_t batch_size) {
  check_images(images, "recalibrate_bn", ck.module().dtype());
  const Tensor x = images.to(ck.module().device());
  if (ck.supernet) set_running_statistics(*ck.supernet, x, batch_size);
  else set_running_statistics(*ck.static_net, x, batch_size);
}

NamedTensorList train_step(const NetCheckpoint& ck, const Tensor& images, const Tensor& labels,
                           const TrainStepHyper& hyper) {
  check_images(images, "train_step", ck.module().dtype());
  OFA_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1 && labels.size(0) == images.size(0),
            "train_step: 'labels' must be int64 [N] with N = ", images.size(0), " (the images' batch), got ",
            dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  const int64_t k = ck.n_classes();
  for (int64_t v : labels.contiguous().to_vector<int64_t>())
    OFA_CHECK(v >= 0 && v < k, "train_step: label ", v, " is outside [0, ", k, ")");
  Module& m = ck.module();
  if (hyper.dropout) (ck.supernet ? ck.supernet->classifier : ck.static_net->classifier)->dropout_rate = *hyper.dropout;
  if (hyper.bn_momentum || hyper.bn_eps) {
    const json bn = ck.supernet ? ck.supernet->get_bn_param() : ck.static_net->get_bn_param();
    const double mom = hyper.bn_momentum.value_or(bn["momentum"].get<double>());
    const double eps = hyper.bn_eps.value_or(bn["eps"].get<double>());
    if (ck.supernet) ck.supernet->set_bn_param(mom, eps);
    else ck.static_net->set_bn_param(mom, eps);
  }
  m.train();
  NamedTensors params = m.named_parameters();
  for (auto& [n, p] : params) p.set_grad(Tensor());
  const Device dev = ck.module().device();
  Tensor logits = ck.forward(images.to(dev));
  Tensor loss = cross_entropy(logits, labels.to(dev), hyper.label_smoothing);
  loss.backward();

  NamedTensorList out;
  out.emplace_back("loss", loss.detach().reshape({1}).clone());
  out.emplace_back("logits", logits.detach().clone());
  for (auto& [n, p] : params) {
    Tensor g = p.grad();
    out.emplace_back("grad." + n, g.defined() ? g.detach().clone() : zeros_like(p));
  }
  ParamGroup h;
  h.lr = hyper.lr;
  h.momentum = hyper.momentum;
  h.nesterov = hyper.nesterov;
  h.weight_decay = hyper.weight_decay;
  SGD opt(make_param_groups(params, hyper.no_decay_keys, h));
  opt.step();
  for (auto& [n, p] : params) out.emplace_back("param." + n, p.detach().clone());
  for (auto& [n, b] : m.named_buffers()) out.emplace_back("buffer." + n, b.detach().clone());
  m.eval();
  return out;
}

TrainStepHyper train_step_hyper_from_config(const std::string& path) {
  const RunConfig cfg = load_run_config(path);
  TrainStepHyper h;
  h.lr = cfg.base_lr;
  h.momentum = cfg.momentum;
  h.nesterov = use_nesterov(cfg);
  h.weight_decay = cfg.weight_decay;
  h.label_smoothing = cfg.label_smoothing;
  h.no_decay_keys = no_decay_key_list(cfg);
  if (cfg.explicit_keys.count("dropout")) h.dropout = cfg.dropout;
  if (cfg.explicit_keys.count("bn_momentum")) h.bn_momentum = cfg.bn_momentum;
  if (cfg.explicit_keys.count("bn_eps")) h.bn_eps = cfg.bn_eps;
  return h;
}

// ---------------------------------------------------------------- command line

std::string eval_usage() {
  return "usage:\n"
         "  ofa_eval --checkpoint CK.safetensors [--subnet SUBNET.json | --sample-seed S] --tensors IN.safetensors\n"
         "           --dump OUT.safetensors [--device cpu|cuda|cuda:N]\n"
         "           [--calib-tensors CALIB.safetensors --calib-batch-size B] [--train-step --config RUN.yaml]\n"
         "  ofa_eval --checkpoint CK.safetensors [--subnet SUBNET.json | --sample-seed S] --export-subnet SUB.safetensors\n"
         "  ofa_eval --checkpoint CK.safetensors [--subnet SUBNET.json | --sample-seed S] --info [--image-size R]\n"
         "\n"
         "CK: a supernet checkpoint (--subnet / --sample-seed pick the active subnet; default the largest)\n"
         "    or a static subnet checkpoint. IN: 'images' float32 [N,3,R,R] (normalised), for --train-step\n"
         "    also 'labels' int64 [N]. OUT: 'logits' (evaluation mode); with --train-step 'loss', 'logits',\n"
         "    'grad.<name>', 'param.<name>' and 'buffer.<name>' after one SGD step (RUN.yaml: the\n"
         "    reference's train_ofa_net.py keys; lr = base_lr). --calib-tensors first recomputes the BN\n"
         "    running statistics from CALIB's 'images' (set_running_statistics). --info prints the subnet\n"
         "    JSON, parameters and MACs (at R, else the subnet's r, else 224). --device: where the\n"
         "    network computes (default cpu; the dumps are written through the host).\n"
         "\n"
         "data mode: evaluate many subnets of a supernet checkpoint on a data set\n"
         "  ofa_eval --checkpoint CK.safetensors --data fashion_mnist|imagenet [--data-path DIR]\n"
         "           (--grid | --subnets LIST.json | --random N [--seed S])\n"
         "           [--image-sizes 28,32] [--split test|valid] [--calib-images K] [--calib-batch-size B]\n"
         "           [--batch-size B] [--workers N] [--config RUN.yaml] [--set key=value ...]\n"
         "           [--csv OUT.csv] [--json OUT.json] [--plot OUT.svg|OUT.png] [--device cpu|cuda|cuda:N]\n"
         "\n"
         "  CK: a supernet checkpoint (also a training checkpoint of ofa_train). Each subnet is made\n"
         "  active, its BN statistics are recomputed on K training images (default 2000, training\n"
         "  transforms at the subnet's resolution, batches of --calib-batch-size, default 100), then it\n"
         "  is evaluated with the evaluation transforms on the test set (--split test, default) or the\n"
         "  held-out part of the training set (--split valid: valid_size of the configuration).\n"
         "  --grid: min and max of the checkpoint's ks_list, expand_ratio_list and depth_list, uniform\n"
         "    over blocks, at each resolution (the reference's validation grid, names R160-D2-E3-K3).\n"
         "  --subnets LIST.json: a JSON list of the reference's subnets [{\"ks\": [...], \"e\": [...],\n"
         "    \"d\": [...], \"r\": [R]}, ...] or one such object; \"r\" is optional (then every\n"
         "    resolution) and an optional \"name\" names the row (default \"subnet I\").\n"
         "  --random N: subnet I (0 <= I < N) is sample_active_subnet with Python's random seeded S + I\n"
         "    (S: --seed, default 0), named \"seed S+I\" (--sample-seed S+I gives the same subnet).\n"
         "  --image-sizes: the resolutions (default: valid_image_size of the configuration, else the\n"
         "    reference's 160,224, or 224 with a single image_size).\n"
         "  Settings: the run configuration's defaults, then --config RUN.yaml (a run's run.yaml or a\n"
         "    configs/ file), then --set key=value, then the flags: --data (dataset), --data-path\n"
         "    (data_path), --calib-images (bn_calib_images), --calib-batch-size (bn_calib_batch_size),\n"
         "    --batch-size (base_batch_size: evaluation batches are 4 x B, as the reference's test\n"
         "    batches), --workers (n_worker). With --split test, valid_size is not used. --set threads=N\n"
         "    sets the OpenMP threads of the CPU kernels. --device (default cpu, whatever the\n"
         "    configuration's device says): on cuda the loaders' batches are pinned and uploaded.\n"
         "  Output: a table on stdout (subnet, resolution, MMACs, Mparams, top-1, top-5, loss, and * for\n"
         "    the Pareto front of top-1 against MACs), progress on stderr; --csv and --json write every\n"
         "    result; --plot draws top-1 against MACs with the Pareto front: .svg with title, axis\n"
         "    labels, ticks, legend and a tooltip per dot; .png the same picture without any text.\n";
}

EvalOptions parse_eval_args(const std::vector<std::string>& args) {
  EvalOptions o;
  auto value = [&](size_t& i) -> const std::string& {
    OFA_CHECK(i + 1 < args.size(), "ofa_eval: option ", args[i], " needs a value");
    return args[++i];
  };
  auto to_int = [](const std::string& v, const std::string& what) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    OFA_CHECK(!v.empty() && end && *end == '\0' && errno == 0, "ofa_eval: ", what, " must be an integer, got '", v,
              "'");
    return static_cast<int64_t>(x);
  };
  auto integer = [&](size_t& i, const char* what) { return to_int(value(i), what); };
  auto positive = [&](size_t& i, const char* what, int64_t min = 1) {
    const int64_t x = integer(i, what);
    OFA_CHECK(x >= min, "ofa_eval: ", what, " must be ", min == 0 ? "0 or more" : "positive", ", got ", x);
    return x;
  };
  // Which data-mode options were given, for the error when --data is missing.
  std::vector<std::string> data_opts;
  bool calib_bs_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool data_opt = a == "--data-path" || a == "--grid" || a == "--subnets" || a == "--random" ||
                          a == "--seed" || a == "--image-sizes" || a == "--split" || a == "--calib-images" ||
                          a == "--batch-size" || a == "--workers" || a == "--set" || a == "--csv" ||
                          a == "--json" || a == "--plot";
    if (data_opt) data_opts.push_back(a);
    if (a == "--checkpoint") o.checkpoint = value(i);
    else if (a == "--subnet") o.subnet = value(i);
    else if (a == "--sample-seed") o.sample_seed = integer(i, "--sample-seed");
    else if (a == "--tensors") o.tensors = value(i);
    else if (a == "--dump") o.dump = value(i);
    else if (a == "--device") o.device = value(i);
    else if (a == "--calib-tensors") o.calib_tensors = value(i);
    else if (a == "--calib-batch-size") {
      o.calib_batch_size = integer(i, "--calib-batch-size");
      calib_bs_given = true;
    }
    else if (a == "--train-step") o.train_step = true;
    else if (a == "--config") o.config = value(i);
    else if (a == "--export-subnet") o.export_subnet = value(i);
    else if (a == "--info") o.info = true;
    else if (a == "--image-size") o.image_size = integer(i, "--image-size");
    else if (a == "--data") o.data = value(i);
    else if (a == "--data-path") o.data_path = value(i);
    else if (a == "--grid") o.grid = true;
    else if (a == "--subnets") o.subnet_list = value(i);
    else if (a == "--random") o.random_n = positive(i, "--random");
    else if (a == "--seed") o.seed = positive(i, "--seed", 0);
    else if (a == "--image-sizes") {
      const std::string v = value(i);
      std::stringstream ss(v);
      std::string part;
      while (std::getline(ss, part, ',')) {
        const int64_t r = to_int(part, "each of --image-sizes");
        OFA_CHECK(r >= 1, "ofa_eval: --image-sizes must list positive resolutions, got '", v, "'");
        o.image_sizes.push_back(r);
      }
      OFA_CHECK(!o.image_sizes.empty(), "ofa_eval: --image-sizes needs resolutions, like --image-sizes 28,32");
    } else if (a == "--split") o.split = value(i);
    else if (a == "--calib-images") o.calib_images = positive(i, "--calib-images");
    else if (a == "--batch-size") o.batch_size = positive(i, "--batch-size");
    else if (a == "--workers") o.workers = positive(i, "--workers", 0);
    else if (a == "--set") o.sets.push_back(value(i));
    else if (a == "--csv") o.csv = value(i);
    else if (a == "--json") o.json_out = value(i);
    else if (a == "--plot") o.plot = value(i);
    else if (a == "--help" || a == "-h") o.help = true;
    else OFA_CHECK(false, "ofa_eval: unknown argument '", a, "'\n", eval_usage());
  }
  if (o.help) return o;
  OFA_CHECK(!o.checkpoint.empty(), "ofa_eval: --checkpoint CK.safetensors is required\n", eval_usage());
  OFA_CHECK(o.data_mode() || data_opts.empty(), "ofa_eval: ", data_opts.empty() ? "" : data_opts.front(),
            " applies to the data mode: add --data fashion_mnist|imagenet");
  const int modes = (!o.tensors.empty() || !o.dump.empty()) + !o.export_subnet.empty() + o.info + o.data_mode();
  OFA_CHECK(modes == 1, "ofa_eval: give exactly one of --tensors/--dump, --export-subnet, --info, --data\n",
            eval_usage());
  if (o.data_mode()) {
    OFA_CHECK(o.data == "fashion_mnist" || o.data == "imagenet", "ofa_eval: --data must be fashion_mnist or imagenet, got '",
              o.data, "'");
    const int sel = o.grid + !o.subnet_list.empty() + o.random_n.has_value();
    OFA_CHECK(sel == 1, "ofa_eval: --data needs exactly one of --grid, --subnets LIST.json, --random N",
              sel > 1 ? " (they exclude each other)" : "");
    OFA_CHECK(!o.seed || o.random_n, "ofa_eval: --seed applies to --random N");
    OFA_CHECK(o.subnet.empty() && !o.sample_seed,
              "ofa_eval: --subnet / --sample-seed pick one subnet for the tensor modes; with --data use --subnets "
              "LIST.json (one object or a list) or --random N --seed S");
    OFA_CHECK(o.split.empty() || o.split == "test" || o.split == "valid", "ofa_eval: --split must be test or valid, got '",
              o.split, "'");
    OFA_CHECK(o.calib_tensors.empty() && !o.train_step && o.image_size == 0,
              "ofa_eval: --calib-tensors, --train-step and --image-size do not apply to --data (use --calib-images K "
              "and --image-sizes R1,R2)");
    OFA_CHECK(!calib_bs_given || o.calib_batch_size >= 1, "ofa_eval: --calib-batch-size must be positive, got ",
              o.calib_batch_size);
    if (!o.plot.empty()) ofa::check_plot_path(o.plot);
    OFA_CHECK(o.device == "cpu" || o.device == "cuda" || o.device.rfind("cuda:", 0) == 0,
              "ofa_eval: --device must be cpu or cuda, got '", o.device, "'");
    return o;
  }
  OFA_CHECK(o.subnet.empty() || !o.sample_seed, "ofa_eval: --subnet and --sample-seed exclude each other");
  if (!o.tensors.empty() || !o.dump.empty())
    OFA_CHECK(!o.tensors.empty() && !o.dump.empty(), "ofa_eval: --tensors and --dump go together");
  OFA_CHECK(o.calib_tensors.empty() || o.calib_batch_size >= 1,
            "ofa_eval: --calib-tensors needs --calib-batch-size B with B >= 1");
  OFA_CHECK(o.calib_batch_size == 0 || !o.calib_tensors.empty(), "ofa_eval: --calib-batch-size needs --calib-tensors");
  OFA_CHECK(o.calib_tensors.empty() || !o.tensors.empty() || !o.export_subnet.empty(),
            "ofa_eval: --calib-tensors applies to --tensors or --export-subnet");
  OFA_CHECK(!o.train_step || !o.tensors.empty(), "ofa_eval: --train-step needs --tensors and --dump");
  OFA_CHECK(o.train_step == !o.config.empty(), "ofa_eval: --train-step and --config RUN.yaml go together");
  OFA_CHECK(o.image_size == 0 || o.info, "ofa_eval: --image-size applies to --info");
  OFA_CHECK(o.image_size >= 0, "ofa_eval: --image-size must be positive");
  OFA_CHECK(o.device == "cpu" || o.device == "cuda" || o.device.rfind("cuda:", 0) == 0,
            "ofa_eval: --device must be cpu or cuda, got '", o.device, "'");
  return o;
}

namespace {

// Sets the active subnet of a supernet checkpoint from --subnet / --sample-seed;
// returns the subnet's resolution (0: none given).
int64_t select_subnet(const NetCheckpoint& ck, const EvalOptions& o) {
  if (!ck.is_supernet()) {
    OFA_CHECK(o.subnet.empty() && !o.sample_seed, "ofa_eval: '", ck.path,
              "' is a static subnet checkpoint; --subnet / --sample-seed apply to supernet checkpoints only");
    return 0;
  }
  if (!o.subnet.empty()) {
    const SubnetSpec s = read_subnet_file(o.subnet);
    try {
      ck.supernet->set_active_subnet(s.setting);
    } catch (const Error& e) {
      throw Error(str_cat("ofa_eval: subnet '", o.subnet, "': ", e.what()));
    }
    return s.resolution;
  }
  if (o.sample_seed) {
    // random.seed(S) hashes |S| for an int.
    const int64_t s = *o.sample_seed;
    PyRandom rng(static_cast<uint64_t>(s < 0 ? -s : s));
    ck.supernet->sample_active_subnet(rng);
  }
  return 0;
}

}  // namespace

void run_ofa_eval(const EvalOptions& o, std::ostream& out) {
  if (o.help) {
    out << eval_usage();
    return;
  }
  if (o.data_mode()) {
    run_eval_data(o, out, std::cerr, ::isatty(2) == 1);
    return;
  }
  const Device dev = resolve_device(o.device, "ofa_eval --device", "--device cpu");
  NetCheckpoint ck = load_net_checkpoint(o.checkpoint);
  const int64_t subnet_r = select_subnet(ck, o);

  if (o.info) {
    int64_t r = o.image_size;
    if (r == 0) r = subnet_r;
    if (r == 0 && ck.metadata.count("image_size")) r = std::stoll(ck.metadata.at("image_size"));
    if (r == 0) r = 224;
    NetInfo info;
    if (ck.is_supernet()) {
      out << subnet_json_line(ck.supernet->active_setting(), r) << "\n";
      info = ck.supernet->active_net_info(r);
    } else {
      if (ck.metadata.count("subnet")) {
        SubnetSpec s = parse_subnet_json(ck.metadata.at("subnet"), "'" + ck.path + "' metadata 'subnet'");
        out << subnet_json_line(s.setting, r) << "\n";
      } else {
        out << "{\"net_config\": " << ck.static_net->config().dump() << ", \"r\": [" << r << "]}\n";
      }
      info = ck.static_net->net_info(r);
    }
    out << "params " << info.params << " (" << human(info.params / 1e6, 3) << ")\n";
    out << "macs " << info.macs << " (" << human(info.macs / 1e6, 2) << " at " << r << "x" << r << ")\n";
    return;
  }

  // Info and export need no arithmetic; recalibration, evaluation and the
  // training step run on the device (the dumps are written through the host).
  ck.module().to(dev);
  if (!o.calib_tensors.empty()) {
    const SafetensorsFile calib = load_safetensors(o.calib_tensors);
    const Tensor& ci = calib.at("images");
    check_images(ci, "'" + o.calib_tensors + "'");
    recalibrate_bn(ck, ci, o.calib_batch_size);
  }

  if (!o.export_subnet.empty()) {
    OFA_CHECK(ck.is_supernet(), "ofa_eval: --export-subnet needs a supernet checkpoint; '", ck.path,
              "' is already a static subnet");
    OFA_CHECK(!o.subnet.empty() || o.sample_seed, "ofa_eval: --export-subnet needs --subnet SUBNET.json or --sample-seed S");
    ck.module().to(Device::cpu());  // the subnet's weights are cut from host copies
    auto sub = ck.supernet->get_active_subnet();
    SafetensorsMetadata extra{{"subnet", subnet_json_line(ck.supernet->active_setting(), subnet_r)}};
    if (subnet_r > 0) extra["image_size"] = std::to_string(subnet_r);
    save_static_checkpoint(o.export_subnet, *sub, extra);
    return;
  }

  const SafetensorsFile in = load_safetensors(o.tensors);
  const Tensor images = in.at("images");
  check_images(images, "'" + o.tensors + "'");
  NamedTensorList result;
  if (o.train_step) {
    TrainStepHyper h = train_step_hyper_from_config(o.config);
    result = train_step(ck, images, in.at("labels"), h);
  } else {
    result.emplace_back("logits", eval_logits(ck, images));
  }
  save_safetensors(o.dump, result, {{"format", "ofa_eval_dump"}});
}

int ofa_eval_main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
      std::cerr << eval_usage();
      return 2;
    }
    run_ofa_eval(parse_eval_args(args), std::cout);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace ofa::nn
