#include "ofa/eval_data.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ofa/eval_report.h"
#include "ofa/run_manager.h"
#include "engine/threads.h"

namespace ofa {

namespace {

std::string yaml_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  OFA_CHECK(in.good(), "ofa_eval: ", what, " '", path, "' cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An output file's folder must exist before hours of evaluation, not after.
void check_output_folder(const std::string& path, const char* option) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat st;
  OFA_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "ofa_eval: ", option, " '", path, "': the folder '",
            dir, "' does not exist");
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

RunConfig eval_data_config(const nn::EvalOptions& o) {
  std::vector<std::string> ov = o.sets;
  ov.push_back("dataset=" + o.data);
  if (!o.data_path.empty()) ov.push_back("data_path=" + yaml_quoted(o.data_path));
  if (o.calib_images) ov.push_back("bn_calib_images=" + std::to_string(*o.calib_images));
  if (o.calib_batch_size > 0) ov.push_back("bn_calib_batch_size=" + std::to_string(o.calib_batch_size));
  if (o.batch_size) ov.push_back("base_batch_size=" + std::to_string(*o.batch_size));
  if (o.workers) ov.push_back("n_worker=" + std::to_string(*o.workers));
  // The test split never reads the hold-out images: do not make a small
  // training set fail the default valid_size.
  if (o.split != "valid") ov.push_back("valid_size=0");
  ov.push_back("device=" + o.device);  // pinned loader batches on a GPU
  if (o.config.empty()) return run_config_from_yaml_string("", "ofa_eval defaults", ov);
  // A recipe's keys outside `stages` hold the data settings of every stage.
  return load_recipe_config(o.config, ov).base;
}

std::vector<GridEntry> subnet_list_entries(const std::string& text, const std::string& where,
                                           const std::vector<int64_t>& resolutions) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(str_cat(where, ": not valid JSON (", e.what(), ")"));
  }
  if (j.is_object()) j = nlohmann::json::array({j});
  OFA_CHECK(j.is_array() && !j.empty(), where,
            ": expected a JSON list of subnets [{\"ks\": [...], \"e\": [...], \"d\": [...], \"r\": [R]}, ...] or one "
            "such object, got ",
            j.is_array() ? "an empty list" : j.type_name());
  std::vector<GridEntry> out;
  for (size_t i = 0; i < j.size(); ++i) {
    nlohmann::json item = j[i];
    const std::string at = str_cat(where, " entry ", i);
    OFA_CHECK(item.is_object(), at, ": a subnet must be a JSON object, got ", item.dump());
    std::string name = str_cat("subnet ", i);
    if (item.contains("name")) {
      OFA_CHECK(item["name"].is_string() && !item["name"].get<std::string>().empty(), at,
                ": 'name' must be a non-empty string, got ", item["name"].dump());
      name = item["name"].get<std::string>();
      item.erase("name");
    }
    const nn::SubnetSpec spec = nn::parse_subnet_json(item.dump(), at);
    const std::vector<int64_t> rs = spec.resolution > 0 ? std::vector<int64_t>{spec.resolution} : resolutions;
    for (int64_t r : rs) {
      GridEntry g;
      g.name = name;
      g.setting = spec.setting;
      g.resolution = r;
      out.push_back(std::move(g));
    }
  }
  return out;
}

std::vector<GridEntry> random_entries(nn::OFAMobileNetV3& net, int64_t n, int64_t seed,
                                      const std::vector<int64_t>& resolutions) {
  OFA_CHECK(n >= 1 && seed >= 0, "random_entries: need n >= 1 and seed >= 0, got n = ", n, ", seed = ", seed);
  std::vector<GridEntry> out;
  for (int64_t i = 0; i < n; ++i) {
    PyRandom rng(static_cast<uint64_t>(seed + i));
    const nn::SubnetSetting s = net.sample_active_subnet(rng);
    for (int64_t r : resolutions) {
      GridEntry g;
      g.name = str_cat("seed ", seed + i);
      g.setting = s;
      g.resolution = r;
      out.push_back(std::move(g));
    }
  }
  return out;
}

std::string result_label(const std::string& name, int64_t resolution) {
  const std::string prefix = str_cat("R", resolution, "-");
  if (name.rfind(prefix, 0) == 0) return name;
  return str_cat(name, " @", resolution);
}

std::vector<SubnetResult> run_eval_data(const nn::EvalOptions& o, std::ostream& out, std::ostream& err,
                                        bool live_progress) {
  const Device dev = resolve_device(o.device, "ofa_eval --device", "--device cpu");
  const std::vector<std::pair<std::string, const char*>> outputs{{o.csv, "--csv"}, {o.json_out, "--json"}, {o.plot, "--plot"}};
  for (const auto& [path, opt] : outputs)
    if (!path.empty()) check_output_folder(path, opt);
  if (!o.plot.empty()) check_plot_path(o.plot);

  const RunConfig cfg = eval_data_config(o);
  set_compute_threads(cfg.threads);
  const EvalSplit split = o.split == "valid" ? EvalSplit::Valid : EvalSplit::Test;
  const std::string split_name = split == EvalSplit::Valid ? "valid" : "test";

  nn::NetCheckpoint ck = nn::load_net_checkpoint(o.checkpoint);
  OFA_CHECK(ck.is_supernet(), "ofa_eval --data: '", o.checkpoint, "' is a static subnet checkpoint (format ",
            nn::kStaticNetFormat, "); the data mode evaluates subnets of a supernet checkpoint (format ",
            nn::kSupernetFormat, ", as ofa_train writes)");
  nn::OFAMobileNetV3& net = *ck.supernet;
  net.to(dev);  // evaluation and BN recalibration move each batch to the weights' device

  RunData data;
  try {
    data = open_run_data(cfg);
  } catch (const Error& e) {
    throw Error(str_cat("ofa_eval --data ", cfg.dataset, ": ", e.what(),
                        " (set the folder with --data-path DIR, or data_path in --config / --set data_path=DIR)"));
  }
  OFA_CHECK(data.n_classes == ck.n_classes(), "ofa_eval: '", o.checkpoint, "' classifies ", ck.n_classes(),
            " classes but ", data.description, ": evaluate it on the data set it was trained on");
  OFA_CHECK(split != EvalSplit::Valid || data.has_valid,
            "ofa_eval: --split valid needs a hold-out split: valid_size is 0 (set it with --set valid_size=N or in "
            "--config)");

  const std::vector<int64_t> resolutions = o.image_sizes.empty() ? validation_image_sizes(cfg) : o.image_sizes;
  std::vector<GridEntry> entries;
  if (o.grid) {
    std::vector<int64_t> e;
    for (double x : net.expand_ratio_list) {
      OFA_CHECK(x == static_cast<double>(static_cast<int64_t>(x)), "ofa_eval --grid: the checkpoint's expand ratio ", x,
                " is not an integer; list the subnets with --subnets LIST.json");
      e.push_back(static_cast<int64_t>(x));
    }
    entries = validation_grid(net.ks_list, e, net.depth_list, resolutions);
  } else if (!o.subnet_list.empty()) {
    entries = subnet_list_entries(read_text(o.subnet_list, "--subnets file"), "'" + o.subnet_list + "'", resolutions);
  } else {
    entries = random_entries(net, *o.random_n, o.seed.value_or(0), resolutions);
  }
  // Every subnet must fit the supernet before the long part starts.
  for (const GridEntry& g : entries) {
    try {
      net.set_active_subnet(g.setting);
    } catch (const Error& e) {
      throw Error(str_cat("ofa_eval: subnet '", g.name, "' does not fit the supernet of '", o.checkpoint, "': ", e.what()));
    }
  }

  err << "ofa_eval: " << data.description << "\n"
      << "ofa_eval: " << entries.size() << (entries.size() == 1 ? " evaluation" : " evaluations") << " on the " << split_name << " split, BN statistics from "
      << cfg.bn_calib_images << " training images (batches of " << cfg.bn_calib_batch_size << "), evaluation batches of "
      << test_batch_size(cfg) << "\n";
  err.flush();

  std::vector<SubnetResult> results;
  const size_t n = entries.size();
  for (size_t i = 0; i < n; ++i) {
    const GridEntry& g = entries[i];
    const std::string label = result_label(g.name, g.resolution);
    const std::string head = str_cat("[", i + 1, "/", n, "] ", label);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<SubnetResult> one = evaluate_subnets(net, {g}, data, cfg, split, [&](const std::string& status) {
      if (!live_progress) return;
      // The status starts with the entry's name; show it after the counter.
      const std::string rest = status.size() > g.name.size() ? status.substr(g.name.size()) : status;
      err << "\r\x1b[K" << head << rest << std::flush;
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const SubnetResult& r = one.at(0);
    if (live_progress) err << "\r\x1b[K";
    err << head << ": top-1 " << fixed(r.metrics.top1, 2) << "%, top-5 " << fixed(r.metrics.top5, 2) << "%, loss "
        << fixed(r.metrics.loss, 4) << ", " << fixed(r.info.macs / 1e6, 2) << " MMACs (" << fixed(secs, 1) << " s)\n";
    err.flush();
    results.push_back(one[0]);
  }

  const std::vector<bool> pareto = pareto_front(results);
  out << format_results_table(results, pareto);
  std::string front;
  for (size_t i = 0; i < results.size(); ++i)
    if (pareto[i]) front += (front.empty() ? "" : ", ") + result_label(results[i].name, results[i].resolution);
  out << "Pareto-optimal (top-1 against MACs): " << front << "\n";

  ReportContext ctx;
  ctx.checkpoint = o.checkpoint;
  ctx.dataset = cfg.dataset;
  ctx.data_description = data.description;
  ctx.split = split_name;
  ctx.bn_calib_images = cfg.bn_calib_images;
  std::vector<std::string> written;
  if (!o.csv.empty()) {
    write_results_csv(o.csv, results, pareto);
    written.push_back(o.csv);
  }
  if (!o.json_out.empty()) {
    write_results_json(o.json_out, ctx, results, pareto);
    written.push_back(o.json_out);
  }
  if (!o.plot.empty()) {
    const size_t slash = o.checkpoint.find_last_of('/');
    const std::string ck_name = slash == std::string::npos ? o.checkpoint : o.checkpoint.substr(slash + 1);
    write_plot(o.plot, results, pareto,
               str_cat("top-1 against MACs: ", ck_name, " on ", cfg.dataset, " (", split_name, ")"));
    written.push_back(o.plot);
  }
  if (!written.empty()) {
    out << "wrote";
    for (size_t i = 0; i < written.size(); ++i) out << (i ? ", " : " ") << written[i];
    out << "\n";
  }
  out.flush();
  return results;
}

}  // namespace ofa
