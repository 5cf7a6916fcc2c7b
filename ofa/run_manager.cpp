#include "ofa/run_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/file_io.h"
#include "engine/ops.h"
#include "engine/py_random.h"
#include "engine/safetensors.h"
#include "engine/storage.h"
#include "nn/checkpoint.h"
#include "ofa/eval_tensors.h"
#include "ofa/kd_loss.h"
#include "ofa/lr_schedule.h"

namespace ofa {

// Log lines keep their keys in the order written.
using json = nlohmann::ordered_json;

// ---------------------------------------------------------------- stop requests

namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void ofa_stop_handler(int sig) { g_stop_signal.store(sig); }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = ofa_stop_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // interrupted writes continue; the loop polls the flag between steps
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}
void request_stop(int signal_number) { g_stop_signal.store(signal_number); }
int stop_signal() { return g_stop_signal.load(); }
void clear_stop_request() { g_stop_signal.store(0); }

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string iso_time() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string json_str(const std::string& s) { return json(s).dump(); }

// CRC-32 over every tensor's name and bytes, in name order.
uint32_t tensors_crc(const NamedTensorList& tensors) {
  std::vector<const std::pair<std::string, Tensor>*> sorted;
  for (const auto& kv : tensors) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  uLong crc = crc32(0L, Z_NULL, 0);
  for (auto* kv : sorted) {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(kv->first.data()), static_cast<uInt>(kv->first.size()));
    Tensor t = kv->second.contiguous();
    const auto* p = static_cast<const Bytef*>(t.raw_data());
    size_t n = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    while (n > 0) {
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
      crc = crc32(crc, p, chunk);
      p += chunk;
      n -= chunk;
    }
  }
  return static_cast<uint32_t>(crc);
}

// Keys that may change between a checkpoint and its resume: where things
// are, how fast, and how the run is watched; none changes what is computed.
const std::set<std::string>& resumable_keys() {
  static const std::set<std::string> keys = {"n_worker",       "print_frequency",  "threads",
                                             "checkpoint_minutes", "keep_checkpoints", "stop_after_steps",
                                             "resume_path",    "data_path",        "init_path",
                                             "teacher_path",   "path",
                                             "allreduce_bucket_mb", "overlap_grad_sync", "comm_timeout_s"};
  return keys;
}

void init_he_fin(nn::OFAMobileNetV3& net, Generator& g) {
  // The reference's init_models('he_fin'): every conv weight ~ N(0, sqrt(2 / (k*k*in_channels))).
  for (auto& [name, p] : net.named_parameters()) {
    if (p.dim() != 4) continue;
    const bool depthwise = name.find("depth_conv") != std::string::npos && p.size(1) == 1;
    const int64_t in = depthwise ? p.size(0) : p.size(1);
    Tensor w = p.detach();
    normal_(w, 0.0, std::sqrt(2.0 / static_cast<double>(p.size(2) * p.size(3) * in)), &g);
  }
}

}  // namespace

// ---------------------------------------------------------------- checkpoint files

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return {};
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    // stepNNNNNNNNN.safetensors exactly: temporary files carry a suffix.
    if (n.size() != 4 + 9 + 12 || n.compare(0, 4, "step") != 0 || n.compare(13, 12, ".safetensors") != 0) continue;
    if (!std::all_of(n.begin() + 4, n.begin() + 13, [](char c) { return c >= '0' && c <= '9'; })) continue;
    found.emplace_back(std::stoll(n.substr(4, 9)), dir + "/" + n);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

SafetensorsFile read_training_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  OFA_CHECK(f.metadata.count(nn::kTrainStateKey), "'", path,
            "' is not a training checkpoint (no 'train_state' metadata): resume needs a checkpoint written by "
            "ofa_train; start a new run with init_path: ", path, " to use its weights");
  json st;
  try {
    st = json::parse(f.metadata.at(nn::kTrainStateKey));
  } catch (const std::exception& e) {
    throw Error(str_cat("'", path, "': metadata 'train_state' is not valid JSON (", e.what(), "): the file is corrupt"));
  }
  OFA_CHECK(st.is_object() && st.contains("crc32"), "'", path, "': metadata 'train_state' has no crc32: the file is corrupt");
  const uint32_t want = st["crc32"].get<uint32_t>();
  const uint32_t got = tensors_crc(f.tensors);
  OFA_CHECK(want == got, "'", path, "' is corrupt: its tensors' CRC-32 is ", got, " but the checkpoint recorded ", want);
  return f;
}

TrainState train_state_of(const SafetensorsFile& f) {
  const json st = json::parse(f.metadata.at(nn::kTrainStateKey));
  TrainState s;
  try {
    s.stage = st.at("stage").get<std::string>();
    s.epoch = st.at("epoch").get<int64_t>();
    s.batch = st.at("batch").get<int64_t>();
    s.step = st.at("step").get<int64_t>();
    s.best_acc = st.at("best_acc").get<double>();
    s.elapsed_s = st.at("elapsed_s").get<double>();
    s.finished = st.at("finished").get<bool>();
  } catch (const std::exception& e) {
    throw Error(str_cat("'", f.path, "': metadata 'train_state' lacks a field or has a wrong type (", e.what(), ")"));
  }
  return s;
}

// ---------------------------------------------------------------- RunManager

Device resolve_device(const std::string& name, const std::string& what, const std::string& cpu_choice) {
  if (name == "cpu") return Device::cpu();
  const bool indexed = name.size() > 5 && name.rfind("cuda:", 0) == 0 &&
                       name.find_first_not_of("0123456789", 5) == std::string::npos && name.size() < 10;
  OFA_CHECK(name == "cuda" || indexed, what, ": '", name, "' is not a device: use cpu, cuda or cuda:N");
  const int index = name == "cuda" ? 0 : std::stoi(name.substr(5));
  const int n = cuda_device_count();
  OFA_CHECK(index < n, what, ": '", name, "' but ",
            n == 0 ? std::string("no CUDA device is visible") : str_cat("only ", n, " CUDA device(s) are visible"),
#ifdef OFA_WITH_CUDA
            "",
#else
            " (this build has no CUDA backend: configure with -DOFA_CUDA=ON)",
#endif
            "; use ", cpu_choice, ", or set OFA_CUDA_EMULATION=1 to run the CUDA backend on the CPU emulation "
            "(slow: for tests)");
  return Device::cuda(index);
}

Device train_device(const std::string& name) { return resolve_device(name, "key 'device'", "device: cpu"); }

RunManager::RunManager(RunConfig cfg, std::shared_ptr<const RunData> data, RunOptions opt)
    : cfg_(std::move(cfg)), data_(std::move(data)), opt_(opt), dropout_gen_(static_cast<uint64_t>(cfg_.manual_seed)) {
  validate_run_config(cfg_);
  OFA_CHECK(data_ != nullptr, "RunManager: no data");
  stage_ = opt_.stage_id.empty() ? stage_id(cfg_.task, cfg_.phase) : opt_.stage_id;
  state_.stage = stage_;
  device_ = train_device(cfg_.device);
  OFA_CHECK(cfg_.dynamic_batch_size < 1000, "key 'dynamic_batch_size': ", cfg_.dynamic_batch_size,
            " is too large (the reference's subnet seed has three digits for it)");
  build_network();
}

RunManager::~RunManager() = default;

static std::ostream& console(const RunOptions& o) { return o.out ? *o.out : std::cout; }

void RunManager::build_network() {
  Generator g(static_cast<uint64_t>(cfg_.manual_seed));
  std::vector<double> e(cfg_.expand_list.begin(), cfg_.expand_list.end());
  net_ = std::make_shared<nn::OFAMobileNetV3>(data_->n_classes, cfg_.bn_momentum, cfg_.bn_eps, cfg_.dropout,
                                              cfg_.width_mult_list[0], cfg_.ks_list, e, cfg_.depth_list, &g);
  if (cfg_.model_init == "he_fin") init_he_fin(*net_, g);
  net_->classifier->dropout_generator = &dropout_gen_;
  net_->to(device_);  // before the optimizer is made: its state lives with the parameters
}

void RunManager::load_teacher() {
  teacher_.reset();
  if (cfg_.task == "teacher" || cfg_.kd_ratio <= 0) return;
  OFA_CHECK(!cfg_.teacher_path.empty(), "stage ", stage_, ": kd_ratio is ", cfg_.kd_ratio,
            " but no teacher is given: set teacher_path to the full network's checkpoint (the teacher stage's "
            "final.safetensors), or kd_ratio: 0");
  nn::NetCheckpoint ck = nn::load_net_checkpoint(cfg_.teacher_path);
  if (ck.is_supernet()) {
    ck.supernet->set_max_net();
    teacher_ = ck.supernet->get_active_subnet();
  } else {
    teacher_ = ck.static_net;
  }
  OFA_CHECK(ck.n_classes() == data_->n_classes, "teacher '", cfg_.teacher_path, "' has ", ck.n_classes(),
            " classes but the data set has ", data_->n_classes);
  teacher_->classifier->dropout_generator = &dropout_gen_;
  teacher_->to(device_);
  teacher_->train();
}

void RunManager::log_line(const std::string& file, const std::string& line, bool print) {
  if (!is_root()) return;
  if (print) console(opt_) << (opt_.progress_bar ? "\r\033[K" : "") << line << "\n" << std::flush;
  std::ofstream f(cfg_.path + "/logs/" + file, std::ios::app);
  f << line << "\n";
}

void RunManager::log_json(const std::string& json_line) {
  if (!is_root()) return;
  std::ofstream f(cfg_.path + "/logs/metrics.jsonl", std::ios::app);
  f << json_line << "\n";
}

void RunManager::write_run_files() {
  if (!is_root()) return;
  make_directories(cfg_.path + "/logs");
  make_directories(checkpoint_dir());
  write_file_atomic(cfg_.path + "/run.yaml", run_config_to_yaml(cfg_), "RunManager");
  // run.config: the reference's run_config.config, every key with its value.
  json rc = json::object();
  for (const auto& [k, v] : run_config_values(cfg_)) {
    try {
      rc[k] = json::parse(v);
    } catch (...) {
      rc[k] = v;
    }
  }
  write_file_atomic(cfg_.path + "/run.config", rc.dump(4) + "\n", "RunManager");
  write_file_atomic(cfg_.path + "/net.config", net_->config().dump(4) + "\n", "RunManager");
  // net_info.txt: parameters and MACs of the largest subnet at the largest
  // training resolution, then the module string and the data pipeline.
  const nn::SubnetSetting keep = net_->active_setting();
  net_->set_max_net();
  const int64_t r = *std::max_element(cfg_.image_size.begin(), cfg_.image_size.end());
  const nn::NetInfo info = net_->active_net_info(r);
  json ni = {{"params", info.params / 1e6}, {"flops", info.macs / 1e6}, {"resolution", r}};
  std::ostringstream txt;
  txt << ni.dump(4) << "\n" << net_->module_str() << "\n";
  txt << "data: " << data_->description << "\n";
  txt << "train transform: RandomResizedCrop(" << r << ", scale=(" << cfg_.resize_scale
      << ", 1.0)), RandomHorizontalFlip, ColorJitter(" << cfg_.distort_color << "), ToTensor, Normalize\n";
  txt << "test transform: Resize(ceil(R / 0.875)), CenterCrop(R), ToTensor, Normalize; R in";
  for (int64_t v : validation_image_sizes(cfg_)) txt << " " << v;
  txt << "\n";
  write_file_atomic(cfg_.path + "/net_info.txt", txt.str(), "RunManager");
  net_->set_active_subnet(keep);
}

void RunManager::start(bool resume) {
  loader_ = make_train_loader(*data_, cfg_, world_size(), rank());
  nn::ParamGroup hyper;
  hyper.lr = init_lr(cfg_, world_size());
  hyper.weight_decay = cfg_.weight_decay;
  hyper.momentum = cfg_.momentum;
  hyper.nesterov = use_nesterov(cfg_);
  auto groups = nn::make_param_groups(net_->named_parameters(), no_decay_key_list(cfg_), hyper);
  if (cfg_.opt_type == "sgd") optimizer_ = std::make_unique<nn::SGD>(std::move(groups));
  else optimizer_ = std::make_unique<nn::Adam>(std::move(groups));
  load_teacher();

  std::string from = cfg_.resume_path;
  if (resume && from.empty()) {
    const auto cks = list_checkpoints(checkpoint_dir());
    if (!cks.empty()) from = cks.back();
  }
  if (!from.empty()) {
    resume_from(from);
  } else {
    OFA_CHECK(list_checkpoints(checkpoint_dir()).empty() && !path_exists(final_path()), "stage ", stage_, ": the folder '",
              cfg_.path, "' already holds a run (checkpoints or final.safetensors); continue it with --resume, or "
              "choose another path (key 'path')");
    barrier();  // no rank writes before every rank has checked that the folder is free
    write_run_files();
    if (!cfg_.init_path.empty()) {
      nn::NetCheckpoint ck = nn::load_net_checkpoint(cfg_.init_path);
      OFA_CHECK(ck.is_supernet(), "key 'init_path': '", cfg_.init_path,
                "' holds a static subnet; a stage starts from a supernet checkpoint (a previous stage's final.safetensors)");
      OFA_CHECK(ck.n_classes() == data_->n_classes, "key 'init_path': '", cfg_.init_path, "' has ", ck.n_classes(),
                " classes but the data set has ", data_->n_classes);
      net_->load_reference_state_dict(ck.supernet->state_dict());
      if (cfg_.task == "expand") {
        const int64_t expand_stage = static_cast<int64_t>(net_->expand_ratio_list.size()) - 1;
        net_->re_organize_middle_weights(expand_stage);
      }
      log_line("train_console.txt", str_cat("stage ", stage_, ": weights from ", cfg_.init_path), true);
    }
    broadcast_state();
    state_ = TrainState();
    state_.stage = stage_;
    log_json(str_cat("{\"event\": \"start\", \"stage\": ", json_str(stage_), ", \"time\": ", json_str(iso_time()),
                     ", \"data\": ", json_str(data_->description), "}"));
    if (cfg_.validate_before_training && !cfg_.init_path.empty()) validate(EvalSplit::Test, -1, "before training");
  }
  last_checkpoint_time_ = now_s();
}

void RunManager::resume_from(const std::string& path) {
  SafetensorsFile f;
  try {
    f = read_training_checkpoint(path);
  } catch (const Error& e) {
    std::string prev;
    for (const std::string& c : list_checkpoints(checkpoint_dir()))
      if (c != path) prev = c;
    throw Error(str_cat("cannot resume: ", e.what(),
                        prev.empty() ? std::string()
                                     : str_cat("; the previous checkpoint '", prev,
                                               "' is untouched: resume from it with --set resume_path=", prev)));
  }
  const json st = json::parse(f.metadata.at(nn::kTrainStateKey));
  // The configuration must be the one the checkpoint was trained with.
  RunConfig saved = run_config_from_yaml_string(st.at("config").get<std::string>(), path + " (saved configuration)");
  const auto a = run_config_values(saved), b = run_config_values(cfg_);
  std::vector<std::string> diffs;
  for (size_t i = 0; i < a.size(); ++i)  // the same key table on both sides
    if (!resumable_keys().count(a[i].first) && b[i].second != a[i].second)
      diffs.push_back(str_cat(a[i].first, ": ", a[i].second, " -> ", b[i].second));
  OFA_CHECK(diffs.empty(), "cannot resume from '", path, "': its configuration differs in ",
            [&] {
              std::string s;
              for (const auto& d : diffs) s += (s.empty() ? "" : "; ") + d;
              return s;
            }(),
            " (resume with the checkpoint's values, or start a new run in another folder)");
  state_ = train_state_of(f);
  OFA_CHECK(state_.stage == stage_, "cannot resume from '", path, "': it is a checkpoint of stage '", state_.stage,
            "', not of '", stage_, "'");
  // Network and optimizer.
  nn::NamedTensors model, optim;
  for (const auto& kv : f.tensors) {
    if (kv.first.rfind(nn::kOptimizerPrefix, 0) == 0) optim.emplace_back(kv.first.substr(std::strlen(nn::kOptimizerPrefix)), kv.second);
    else model.push_back(kv);
  }
  try {
    net_->load_state_dict(model, true);
    optimizer_->load_state_dict(optim);
  } catch (const Error& e) {
    throw Error(str_cat("cannot resume from '", path, "': ", e.what()));
  }
  {
    std::set<std::string> with_grad;
    for (const auto& n : st.at("params_with_grad")) with_grad.insert(n.get<std::string>());
    for (auto& [name, p] : net_->named_parameters()) {
      if (!with_grad.count(name)) continue;
      Tensor g = zeros_like(p);
      p.set_grad(g);
    }
  }
  // Random streams, loader position, meters.
  GeneratorState gs;
  gs.seed = st.at("dropout_rng").at(0).get<uint64_t>();
  gs.offset = st.at("dropout_rng").at(1).get<uint64_t>();
  dropout_gen_.set_state(gs);
  loss_meter_.set_totals(st.at("loss_meter").get<std::vector<double>>());
  acc_meters_.top1.set_totals(st.at("top1_meter").get<std::vector<double>>());
  acc_meters_.top5.set_totals(st.at("top5_meter").get<std::vector<double>>());
  if (state_.batch > 0) {
    // Rank 0 wrote the position; every rank continues its own shard at it.
    data::LoaderPosition pos = data::LoaderPosition::parse(st.at("loader").get<std::string>());
    pos.rank = rank();
    loader_->restore(pos);
  }
  if (st.contains("world_size") && st.at("world_size").get<int64_t>() != world_size() && is_root())
    log_line("train_console.txt",
             str_cat("note: '", path, "' was written by a run of ", st.at("world_size").get<int64_t>(),
                     " rank(s) and this run has ", world_size(),
                     ": the learning rate (base_lr * world size) and the data shards change with it"),
             true);
  broadcast_state();
  log_line("train_console.txt",
           str_cat("stage ", stage_, ": resumed from ", path, " at epoch ", state_.epoch + 1, ", batch ", state_.batch,
                   " (step ", state_.step, ")"),
           true);
  log_json(str_cat("{\"event\": \"resume\", \"stage\": ", json_str(stage_), ", \"from\": ", json_str(path),
                   ", \"epoch\": ", state_.epoch, ", \"batch\": ", state_.batch, ", \"step\": ", state_.step,
                   ", \"time\": ", json_str(iso_time()), "}"));
}

std::string RunManager::train_state_json() const {
  json st = json::object();
  st["format"] = 1;
  st["stage"] = state_.stage;
  st["task"] = cfg_.task;
  st["phase"] = cfg_.phase;
  st["epoch"] = state_.epoch;
  st["batch"] = state_.batch;
  st["step"] = state_.step;
  st["best_acc"] = state_.best_acc;
  st["elapsed_s"] = state_.elapsed_s;
  st["finished"] = state_.finished;
  const GeneratorState gs = dropout_gen_.state();
  st["dropout_rng"] = {gs.seed, gs.offset};
  st["loss_meter"] = loss_meter_.totals();
  st["top1_meter"] = acc_meters_.top1.totals();
  st["top5_meter"] = acc_meters_.top5.totals();
  st["loader"] = loader_ ? loader_->position().to_string() : std::string();
  st["world_size"] = world_size();
  // Parameters holding a (zeroed) gradient: the optimizer updates them even in
  // a step that gives them no gradient (weight decay, momentum), as PyTorch's
  // zero_grad keeps them; a resume must recreate them to stay bit-identical.
  json with_grad = json::array();
  for (const auto& [name, p] : net_->named_parameters())
    if (p.grad().defined()) with_grad.push_back(name);
  st["params_with_grad"] = with_grad;
  st["config"] = run_config_to_yaml(cfg_);
  st["time"] = iso_time();
  return st.dump();
}

void RunManager::write_checkpoint(const std::string& path) {
  NamedTensorList tensors;
  // On the host: the CRC and the file read the bytes there.
  for (auto& kv : net_->state_dict()) tensors.emplace_back(kv.first, kv.second.to(Device::cpu()));
  for (auto& kv : optimizer_->state_dict())
    tensors.emplace_back(nn::kOptimizerPrefix + kv.first, kv.second.to(Device::cpu()));
  json st = json::parse(train_state_json());
  st["crc32"] = tensors_crc(tensors);
  SafetensorsMetadata meta = nn::supernet_metadata(*net_);
  meta[nn::kTrainStateKey] = st.dump();
  save_safetensors(path, tensors, meta);
}

void RunManager::save_checkpoint() {
  if (!is_root()) return;
  make_directories(checkpoint_dir());
  const std::string path = checkpoint_dir() + "/" + str_cat("step", fmt("%09.0f", static_cast<double>(state_.step)), ".safetensors");
  write_checkpoint(path);
  // Keep the newest keep_checkpoints.
  auto cks = list_checkpoints(checkpoint_dir());
  for (size_t i = 0; i + static_cast<size_t>(cfg_.keep_checkpoints) < cks.size(); ++i) ::unlink(cks[i].c_str());
  last_checkpoint_time_ = now_s();
}

std::vector<SubnetResult> RunManager::validate(EvalSplit split, int64_t epoch, const char* tag) {
  const nn::SubnetSetting keep = net_->active_setting();
  std::vector<GridEntry> grid = validation_grid(cfg_.ks_list, cfg_.expand_list, cfg_.depth_list, validation_image_sizes(cfg_));
  const bool bar = opt_.progress_bar && is_root();
  const double t0 = now_s();
  AllreduceSum reduce;
  if (world_size() > 1) reduce = [this](std::vector<double>& v) { allreduce_sum(v); };
  auto results = evaluate_subnets(
      *net_, grid, *data_, cfg_, split,
      [&](const std::string& s) {
        if (bar) console(opt_) << "\r\033[K[" << stage_ << "] validating " << s << std::flush;
      },
      world_size(), rank(), reduce);
  if (bar) console(opt_) << "\r\033[K" << std::flush;
  net_->set_active_subnet(keep);
  double loss = 0, top1 = 0, top5 = 0;
  std::string per;
  json subnets = json::array();
  for (const auto& r : results) {
    loss += r.metrics.loss / static_cast<double>(results.size());
    top1 += r.metrics.top1 / static_cast<double>(results.size());
    top5 += r.metrics.top5 / static_cast<double>(results.size());
    per += str_cat(r.name, " (", fmt("%.3f", r.metrics.top1), "), ");
    subnets.push_back({{"name", r.name}, {"top1", r.metrics.top1}, {"top5", r.metrics.top5}, {"loss", r.metrics.loss},
                       {"macs", r.info.macs}, {"params", r.info.params}});
  }
  const char* what = split == EvalSplit::Test ? "Test" : "Valid";
  const std::string line = str_cat("[", stage_, "] ", what, " ", tag, epoch >= 0 ? str_cat(" epoch ", epoch + 1) : "",
                                   ": loss=", fmt("%.3f", loss), ", top-1=", fmt("%.3f", top1), ", top-5=",
                                   fmt("%.3f", top5), " (", fmt("%.1f", now_s() - t0), " s)\t", per);
  log_line("valid_console.txt", line, true);
  json j = {{"event", split == EvalSplit::Test ? "test" : "valid"}, {"stage", stage_}, {"epoch", epoch + 1},
            {"step", state_.step}, {"loss", loss}, {"top1", top1}, {"top5", top5}, {"subnets", subnets},
            {"seconds", now_s() - t0}, {"time", iso_time()}};
  log_json(j.dump());
  return results;
}

void RunManager::train_one_epoch(int64_t epoch, bool& stop) {
  net_->train();
  if (state_.batch == 0) {
    loader_->set_epoch(epoch);
    loss_meter_.reset();
    acc_meters_.reset();
  }
  const int64_t n_batch = loader_->batches_per_epoch();
  const int64_t limit = cfg_.max_train_batches > 0 ? std::min(n_batch, cfg_.max_train_batches) : n_batch;
  const int64_t total_epochs = cfg_.warmup_epochs + cfg_.n_epochs;
  const int64_t total_steps = total_epochs * limit;
  const bool kd = teacher_ != nullptr;
  data::Batch b;
  double window_t0 = now_s(), window_images = 0, window_wait = 0;
  int64_t window_steps = 0;
  double last_bar = 0, bar_t0 = now_s(), bar_images = 0, bar_ips = 0;
  while (state_.batch < limit) {
    const double w0 = now_s();
    if (!loader_->next(b)) break;
    b.to_device(device_);  // asynchronous from the loader's pinned buffers
    window_wait += now_s() - w0;
    const int64_t i = b.batch_index;
    const double lr = learning_rate(cfg_, epoch, i, n_batch, world_size());
    optimizer_->set_lr(lr);
    Tensor soft_logits;
    if (kd) {
      NoGradGuard ng;
      teacher_->train();
      soft_logits = teacher_->forward(b.images).detach();
    }
    net_->zero_grad();
    double loss_sum = 0;
    // Under a launcher the step's accuracies are summed over the ranks (below).
    AccuracyMeters step_acc;
    AccuracyMeters& acc = world_size() > 1 ? step_acc : acc_meters_;
    for (int64_t j = 0; j < cfg_.dynamic_batch_size; ++j) {
      PyRandom rng(static_cast<uint64_t>(epoch * n_batch + i) * 1000000ULL + static_cast<uint64_t>(j) * 1000ULL);
      const nn::SubnetSetting s = net_->sample_active_subnet(rng);
      Tensor out = net_->forward(b.images);
      Tensor loss = train_loss(out, b.labels, cfg_.label_smoothing, soft_logits, kd ? cfg_.kd_ratio : 0.0, cfg_.kd_type);
      const double lv = loss.item();
      if (!std::isfinite(lv))
        throw TrainingDiverged(str_cat("stage ", stage_, ": the loss became ", lv, " at epoch ", epoch + 1, ", batch ",
                                       i, " (step ", state_.step + 1, "), subnet ", j, " ",
                                       nn::subnet_json_line(s, b.resolution), ", lr ", lr,
                                       "; nothing was saved over the last good checkpoint. Lower base_lr, or "
                                       "resume from the last checkpoint with other settings"));
      loss_sum += lv;
      acc.update(out, b.labels);
      if (j + 1 == cfg_.dynamic_batch_size) last_backward(loss);
      else loss.backward();
    }
    sync_gradients();
    optimizer_->step();
    double step_loss = loss_sum / static_cast<double>(cfg_.dynamic_batch_size);
    int64_t step_images = b.size();
    if (world_size() > 1) {
      // The reference's DistributedMetric: every update is the mean over all
      // ranks' images, so every rank holds (and checkpoints) the same meters.
      std::vector<double> v = {step_loss * static_cast<double>(b.size()), static_cast<double>(b.size()),
                               step_acc.top1.sum(), step_acc.top1.count(), step_acc.top5.sum(), step_acc.top5.count()};
      allreduce_sum(v);
      step_loss = v[0] / v[1];
      step_images = static_cast<int64_t>(std::llround(v[1]));
      acc_meters_.top1.merge(v[2], v[3]);
      acc_meters_.top5.merge(v[4], v[5]);
    }
    loss_meter_.update(step_loss, step_images);
    ++state_.batch;
    ++state_.step;
    ++steps_this_run_;
    window_images += static_cast<double>(step_images);
    bar_images += static_cast<double>(step_images);
    ++window_steps;
    state_.elapsed_s = elapsed_at_start_ + (now_s() - run_start_time_);

    const bool last = state_.batch == limit;
    const double t = now_s();
    const double done_frac = static_cast<double>(epoch * limit + state_.batch) / static_cast<double>(total_steps);
    const double eta = state_.elapsed_s * (1.0 - done_frac) / std::max(done_frac, 1e-9);
    if (state_.batch % cfg_.print_frequency == 0 || last) {
      const double dt = std::max(t - window_t0, 1e-9);
      const double ips = window_images / dt;
      json j = {{"event", "train"},       {"stage", stage_},          {"epoch", epoch + 1},
                {"batch", state_.batch},  {"n_batches", limit},       {"step", state_.step},
                {"loss", step_loss},      {"loss_avg", loss_meter_.avg()}, {"top1", acc_meters_.top1.avg()},
                {"top5", acc_meters_.top5.avg()}, {"lr", lr},         {"resolution", b.resolution},
                {"images_per_s", ips},    {"data_wait_s", window_wait / std::max<int64_t>(window_steps, 1)},
                {"elapsed_s", state_.elapsed_s}};
      // Doubles are written shortest-round-trip: a resumed run's log compares bit for bit.
      log_json(j.dump());
      const std::string text = str_cat("[", stage_, "] epoch ", epoch + 1, "/", total_epochs, " batch ", state_.batch,
                                       "/", limit, "  loss ", fmt("%.4f", loss_meter_.avg()), "  top-1 ",
                                       fmt("%.2f", acc_meters_.top1.avg()), "  lr ", fmt("%.5f", lr), "  ",
                                       fmt("%.0f", ips), " img/s  data wait ",
                                       fmt("%.0f", 1e3 * window_wait / std::max<int64_t>(window_steps, 1)),
                                       " ms/step  ETA ", fmt("%.0f", eta), " s");
      if (!opt_.progress_bar) log_line("train_console.txt", text, true);
      else log_line("train_console.txt", text, false);
      window_t0 = t;
      window_images = 0;
      window_wait = 0;
      window_steps = 0;
    }
    if (opt_.progress_bar && is_root() && (t - last_bar > 0.2 || last)) {
      if (t - bar_t0 > 1.0) {  // images/s over the last second or more
        bar_ips = bar_images / (t - bar_t0);
        bar_t0 = t;
        bar_images = 0;
      }
      const int width = 24;
      const int filled = static_cast<int>(width * state_.batch / std::max<int64_t>(limit, 1));
      console(opt_) << "\r\033[K[" << stage_ << "] " << epoch + 1 << "/" << total_epochs << " |"
                    << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(width - filled), '.')
                    << "| " << state_.batch << "/" << limit << " loss " << fmt("%.4f", loss_meter_.avg()) << " top-1 "
                    << fmt("%.2f", acc_meters_.top1.avg()) << " lr " << fmt("%.5f", lr) << " "
                    << fmt("%.0f", bar_ips) << " img/s ETA "
                    << fmt("%.0f", eta) << "s" << std::flush;
      last_bar = t;
    }
    // Stop requests and time-based checkpoints, between steps.
    const bool by_signal = any_rank(stop_signal() != 0);
    const bool by_count = cfg_.stop_after_steps > 0 && steps_this_run_ >= cfg_.stop_after_steps;
    if ((by_signal || by_count) && !last) {
      stop = true;
      return;
    }
    if (by_signal || by_count) stop = true;  // at the epoch's end: finish it, then stop
    if (!last && cfg_.checkpoint_minutes > 0 && t - last_checkpoint_time_ > 60.0 * cfg_.checkpoint_minutes)
      save_checkpoint();
  }
  if (opt_.progress_bar) console(opt_) << "\r\033[K" << std::flush;
}

StageOutcome RunManager::train() {
  OFA_CHECK(loader_ && optimizer_, "RunManager::train: call start() first");
  run_start_time_ = now_s();
  elapsed_at_start_ = state_.elapsed_s;
  steps_this_run_ = 0;
  const int64_t total_epochs = cfg_.warmup_epochs + cfg_.n_epochs;
  if (state_.batch == 0 && state_.epoch == 0)
    log_line("train_console.txt",
             str_cat("[", stage_, "] training ", total_epochs, " epochs of ",
                     cfg_.max_train_batches > 0 ? std::min(cfg_.max_train_batches, loader_->batches_per_epoch())
                                                : loader_->batches_per_epoch(),
                     " batches (", cfg_.base_batch_size, " images, ", cfg_.dynamic_batch_size, " subnet",
                     cfg_.dynamic_batch_size > 1 ? "s" : "", " each), lr ", init_lr(cfg_, world_size()),
                     teacher_ ? str_cat(", distilling from ", cfg_.teacher_path) : std::string()),
             true);
  while (state_.epoch < total_epochs) {
    bool stop = false;
    train_one_epoch(state_.epoch, stop);
    const int64_t limit = cfg_.max_train_batches > 0 ? std::min(loader_->batches_per_epoch(), cfg_.max_train_batches)
                                                     : loader_->batches_per_epoch();
    if (state_.batch < limit) {  // stopped within the epoch
      save_checkpoint();
      log_line("train_console.txt",
               str_cat("[", stage_, "] stopped", stop_signal() ? str_cat(" by signal ", stop_signal()) : std::string(),
                       " at epoch ", state_.epoch + 1, ", batch ", state_.batch, " (step ", state_.step,
                       "); checkpoint saved; continue with --resume"),
               true);
      barrier();
      return StageOutcome::Stopped;
    }
    // The meters already hold every rank's images (reduced at every step).
    const int64_t epoch = state_.epoch;
    const bool validate_now = (epoch + 1) % cfg_.validation_frequency == 0 || epoch + 1 == total_epochs;
    bool is_best = false;
    if (validate_now) {
      auto res = validate(EvalSplit::Valid, epoch, "");
      double top1 = 0;
      for (const auto& r : res) top1 += r.metrics.top1 / static_cast<double>(res.size());
      is_best = top1 > state_.best_acc;
      state_.best_acc = std::max(state_.best_acc, top1);
      log_line("valid_console.txt",
               str_cat("[", stage_, "] Valid [", epoch + 1 - cfg_.warmup_epochs, "/", cfg_.n_epochs, "] top-1=",
                       fmt("%.3f", top1), " (", fmt("%.3f", state_.best_acc), "), Train top-1 ",
                       fmt("%.3f", acc_meters_.top1.avg()), ", Train loss ", fmt("%.3f", loss_meter_.avg())),
               false);
    }
    log_json(json({{"event", "epoch"},
                   {"stage", stage_},
                   {"epoch", epoch + 1},
                   {"step", state_.step},
                   {"train_loss", loss_meter_.avg()},
                   {"train_top1", acc_meters_.top1.avg()},
                   {"train_top5", acc_meters_.top5.avg()},
                   {"best_top1", state_.best_acc},
                   {"elapsed_s", state_.elapsed_s}})
                 .dump());
    state_.epoch = epoch + 1;
    state_.batch = 0;
    state_.elapsed_s = elapsed_at_start_ + (now_s() - run_start_time_);
    if (state_.epoch == total_epochs) state_.finished = true;
    save_checkpoint();
    if (is_best && is_root()) {
      // model_best: a second name for the checkpoint just written (link, then rename: atomic).
      const auto cks = list_checkpoints(checkpoint_dir());
      const std::string best = checkpoint_dir() + "/model_best.safetensors", tmp = best + ".tmp";
      ::unlink(tmp.c_str());
      if (!cks.empty() && ::link(cks.back().c_str(), tmp.c_str()) == 0) ::rename(tmp.c_str(), best.c_str());
    }
    if (stop && !state_.finished) {
      log_line("train_console.txt",
               str_cat("[", stage_, "] stopped at the end of epoch ", state_.epoch, " (step ", state_.step,
                       "); checkpoint saved; continue with --resume"),
               true);
      barrier();
      return StageOutcome::Stopped;
    }
  }
  // The stage's result: final.safetensors (a link to the last checkpoint's data).
  if (is_root()) {
    write_checkpoint(final_path());
    log_line("train_console.txt",
             str_cat("[", stage_, "] finished: ", state_.step, " steps in ", fmt("%.1f", state_.elapsed_s),
                     " s; best validation top-1 ", fmt("%.3f", state_.best_acc), "; result ", final_path()),
             true);
    log_json(json({{"event", "finished"}, {"stage", stage_}, {"step", state_.step}, {"best_top1", state_.best_acc},
                   {"elapsed_s", state_.elapsed_s}, {"time", iso_time()}})
                 .dump());
  }
  barrier();  // the next stage (every rank) reads final.safetensors
  return StageOutcome::Finished;
}

}  // namespace ofa
