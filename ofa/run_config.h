// The run configuration of a progressive-shrinking run: the reference's
// train_ofa_net.py arguments (same names, same defaults, same per-task
// table) plus the engine's own keys, loaded from a YAML mapping with
// "key=value" overrides. Loading is strict: an unknown key, a wrong type or
// an impossible value throws ofa::Error naming the key, where it came from
// (file:line, or "--set key=value") and what would be valid.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/common.h"

namespace ofa {

// The key table, one line per key: X(type, name, default, check, doc).
// It declares the RunConfig members and drives parsing, printing and
// validation (run_config.cpp), so adding a key is one line here. `check` names
// a validator in run_config.cpp. Lists may be written as YAML sequences,
// a single value, or the reference's comma strings ("3,5,7").
// Defaults of the task-dependent keys (n_epochs .. path) are the reference's
// values for its default task, depth phase 1; apply_task_defaults() sets them
// for the configured task and phase.
#define OFA_RUN_CONFIG_KEYS(X) \
  /* ---- the reference's (train_ofa_net.py) */ \
  X(std::string, task, "depth", task_name, "progressive-shrinking task: teacher (the full K7-E6-D4 net) | kernel | depth | expand") \
  X(int64_t, phase, 1, phase_number, "phase of the depth/expand task: 1 | 2 (ignored by kernel)") \
  X(int64_t, n_epochs, 25, positive_int, "training epochs after warmup (task default)") \
  X(double, base_lr, 2.5e-3, positive_real, "learning rate per rank; init_lr = base_lr * world size (task default)") \
  X(int64_t, warmup_epochs, 0, non_negative_int, "linear-warmup epochs before the schedule (task default)") \
  X(double, warmup_lr, -1.0, finite_real, "warmup start lr; < 0 means base_lr (task default)") \
  X(std::vector<int64_t>, ks_list, (std::vector<int64_t>{3, 5, 7}), kernel_sizes, "elastic kernel sizes, from {3,5,7} (task default)") \
  X(std::vector<int64_t>, expand_list, (std::vector<int64_t>{6}), expand_ratios, "elastic expand ratios, from {3,4,6} (task default)") \
  X(std::vector<int64_t>, depth_list, (std::vector<int64_t>{3, 4}), depths, "elastic stage depths, from {2,3,4} (task default)") \
  X(int64_t, dynamic_batch_size, 2, positive_int, "subnets sampled (forward+backward) per optimizer step (task default)") \
  X(std::string, path, "runs/ofa/kernel2kernel_depth/phase1", non_empty, "output folder: logs, checkpoints, config (task default)") \
  X(int64_t, manual_seed, 0, non_negative_int, "seed of torch, numpy and python random") \
  X(std::string, lr_schedule_type, "cosine", lr_schedule, "per-batch lr schedule after warmup: cosine | none") \
  X(int64_t, base_batch_size, 64, positive_int, "training batch per rank; test batch = 4x") \
  X(double, valid_size, 10000, valid_size_value, "held-out part of the training set: count (>= 1) or fraction (< 1); 0 = none") \
  X(std::string, opt_type, "sgd", optimizer, "optimizer: sgd | adam") \
  X(double, momentum, 0.9, closed_open_unit, "SGD momentum, in [0, 1)") \
  X(bool, no_nesterov, false, any, "true: plain momentum instead of Nesterov") \
  X(double, weight_decay, 3e-5, non_negative_real, "L2 weight decay, except on no_decay_keys parameters") \
  X(double, label_smoothing, 0.1, closed_open_unit, "label smoothing of the cross-entropy, in [0, 1)") \
  X(std::string, no_decay_keys, "bn#bias", no_decay, "'#'-separated name parts whose parameters get no weight decay; None = all decay") \
  X(bool, fp16_allreduce, false, any, "compress gradients to fp16 for the allreduce") \
  X(std::string, model_init, "he_fout", model_init_name, "weight init: he_fout | he_fin") \
  X(int64_t, validation_frequency, 1, positive_int, "validate every N epochs") \
  X(int64_t, print_frequency, 10, positive_int, "log every N batches") \
  X(int64_t, n_worker, 8, non_negative_int, "data-loading threads per rank (0 = load on the training thread)") \
  X(double, resize_scale, 0.08, open_closed_unit, "random-resized-crop minimum area fraction, in (0, 1]") \
  X(std::string, distort_color, "tf", distort_color_name, "colour jitter: tf | torch | None") \
  X(std::vector<int64_t>, image_size, (std::vector<int64_t>{128, 160, 192, 224}), image_sizes, "training resolutions (continuous: every multiple of 4 from min to max)") \
  X(bool, continuous_size, true, any, "draw any multiple of 4 between min and max image_size, not only the listed sizes") \
  X(bool, not_sync_distributed_image_size, false, any, "true: ranks draw their batch resolution independently") \
  X(double, bn_momentum, 0.1, open_closed_unit, "BN running-statistics momentum (PyTorch convention), in (0, 1]") \
  X(double, bn_eps, 1e-5, positive_real, "BN epsilon") \
  X(double, dropout, 0.1, closed_open_unit, "dropout before the classifier, in [0, 1)") \
  X(std::string, base_stage_width, "proxyless", stage_width_name, "reference key (proxyless | google); OFAMobileNetV3 ignores it") \
  X(std::vector<double>, width_mult_list, (std::vector<double>{1.0}), width_mults, "width multiplier of the supernet (one value)") \
  X(int64_t, dy_conv_scaling_mode, 1, scaling_mode, "kernel transform of elastic depthwise convs: 1 (transform matrices)") \
  X(bool, independent_distributed_sampling, false, any, "true: ranks draw their subnets independently") \
  X(double, kd_ratio, 1.0, non_negative_real, "weight of the distillation loss; 0 = no teacher") \
  X(std::string, kd_type, "ce", kd_type_name, "distillation loss: ce (soft-target cross-entropy) | mse") \
  X(std::string, teacher_path, "", any, "teacher checkpoint (the full K7-E6-D4 net); reference downloads ofa_D4_E6_K7") \
  /* ---- ours */ \
  X(std::string, init_path, "", any, "weights to start from (kernel: the full net; depth/expand: the previous task's result); empty = model_init") \
  X(std::string, resume_path, "", any, "checkpoint to resume training from (epoch, optimizer, weights); empty = fresh start") \
  X(std::string, dataset, "fashion_mnist", dataset_name, "data set: fashion_mnist | imagenet (ImageFolder train/ and val/)") \
  X(std::string, data_path, "", any, "data set root; empty = the dataset's default location") \
  X(std::string, device, "cpu", device_name, "where to train: cpu | cuda | cuda:N") \
  X(std::vector<int64_t>, valid_image_size, (std::vector<int64_t>{}), positive_ints, "validation resolutions; empty = reference ({160,224}, or {224} with one image_size)") \
  X(double, eval_crop_ratio, 0.875, open_closed_unit, "evaluation: resize the short side to ceil(R / ratio), then centre-crop R (reference 0.875; 1 = the whole image)") \
  X(int64_t, bn_calib_images, 2000, positive_int, "training images for BN recalibration before each validation") \
  X(int64_t, bn_calib_batch_size, 100, positive_int, "batch size of BN recalibration") \
  X(int64_t, max_train_batches, 0, non_negative_int, "stop each epoch after N batches (smoke runs); 0 = all") \
  X(int64_t, threads, 0, non_negative_int, "OpenMP threads for CPU kernels; 0 = the runtime's default") \
  X(double, checkpoint_minutes, 0, non_negative_real, "also checkpoint every N minutes within an epoch; 0 = only at epoch ends") \
  X(int64_t, keep_checkpoints, 3, positive_int, "checkpoints kept per stage (the newest), besides model_best") \
  X(bool, validate_before_training, true, any, "validate on the test set before a stage that starts from init_path trains (as the reference)") \
  X(double, allreduce_bucket_mb, 25, positive_real, "distributed runs: gradients are averaged over the ranks in buckets of at most this many MB") \
  X(bool, overlap_grad_sync, true, any, "distributed runs: start each bucket's allreduce from the last backward pass as soon as its gradients are final (false: all after backward; same result)") \
  X(double, comm_timeout_s, 300, positive_real, "distributed runs: a collective that waits longer than this (a rank died or hangs) ends every rank") \
  X(int64_t, stop_after_steps, 0, non_negative_int, "checkpoint and stop after N optimizer steps of this invocation (time-boxed jobs, tests); 0 = never")

struct RunConfig {
#define OFA_RUN_CONFIG_MEMBER(type, name, def, check, doc) type name = def;
  OFA_RUN_CONFIG_KEYS(OFA_RUN_CONFIG_MEMBER)
#undef OFA_RUN_CONFIG_MEMBER

  // Keys set by the file or an override; apply_task_defaults leaves them alone.
  // Not a key itself and not part of operator==.
  std::set<std::string> explicit_keys;

  bool operator==(const RunConfig& o) const;  // every key's value
  bool operator!=(const RunConfig& o) const { return !(*this == o); }
};

// One row of the key table, for help texts and documentation.
struct RunConfigKeyInfo {
  std::string name, type, doc, default_yaml;
};
const std::vector<RunConfigKeyInfo>& run_config_keys();

// Parses FILE (a YAML mapping; an empty file = all defaults), applies the
// "key=value" overrides (values parsed as YAML), then apply_task_defaults, then
// validates. Throws ofa::Error on any problem (see the top of this file).
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
RunConfig run_config_from_yaml_string(const std::string& yaml, const std::string& source_name,
                                      const std::vector<std::string>& overrides = {});

// The effective configuration, every key with its doc as a comment;
// load_run_config of it gives an equal RunConfig.
std::string run_config_to_yaml(const RunConfig& cfg);

// Every key with its value as YAML text ("0.03", "[3, 5, 7]", "\"cosine\""),
// in table order: what run_config_to_yaml writes, for comparisons and JSON.
std::vector<std::pair<std::string, std::string>> run_config_values(const RunConfig& cfg);

// Throws ofa::Error naming the first impossible value (run after any
// programmatic change; the loaders call it).
void validate_run_config(const RunConfig& cfg);

// The reference's per-task table (train_ofa_net.py): n_epochs, base_lr,
// warmup_epochs, warmup_lr, ks_list, expand_list, depth_list,
// dynamic_batch_size and path for cfg.task / cfg.phase, each unless it is in
// cfg.explicit_keys. Throws for an unknown task or phase.
void apply_task_defaults(RunConfig& cfg);

// ---- recipes: the whole progressive-shrinking run in one file
// A recipe file is a run configuration with one more key, `stages`: a list
// of mappings, each naming a task (teacher | kernel | depth | expand), its
// phase, and any keys that differ in that stage. A stage's configuration is
// the file's keys, then the stage's, then the --set overrides (so a --set
// reaches every stage), then the task defaults for keys still unset. Its
// `path` is the file's path joined with the stage's id unless the stage
// names one. A file without `stages` is a recipe of one stage.
struct StageConfig {
  std::string id;  // teacher, kernel, depth_phase1, depth_phase2, expand_phase1, expand_phase2
  RunConfig cfg;
};
struct RecipeConfig {
  RunConfig base;  // the file's keys and the overrides, without any stage's
  std::vector<StageConfig> stages;
  bool has_stages = false;  // the file had a `stages` key
};
RecipeConfig load_recipe_config(const std::string& path, const std::vector<std::string>& overrides = {});
RecipeConfig recipe_config_from_yaml_string(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides = {});
// The folder a recipe's stages go under: the file's (or --set) path, else runs/ofa.
std::string recipe_root_path(const RunConfig& base);
// "teacher", "kernel", "depth_phase1", ... for a task and phase.
std::string stage_id(const std::string& task, int64_t phase);

// "bn#bias" -> {"bn", "bias"}; "" or "None" -> {}.
std::vector<std::string> no_decay_key_list(const RunConfig& cfg);

// Values the reference derives from the arguments at start-up.
double init_lr(const RunConfig& cfg, int64_t world_size);  // base_lr * world size
double effective_warmup_lr(const RunConfig& cfg);          // warmup_lr, or base_lr when < 0
inline int64_t train_batch_size(const RunConfig& cfg) { return cfg.base_batch_size; }
inline int64_t test_batch_size(const RunConfig& cfg) { return cfg.base_batch_size * 4; }
bool use_nesterov(const RunConfig& cfg);                     // !no_nesterov
// The validation resolutions: valid_image_size, or the reference's
// {224} when one training size is given, else {160, 224}.
std::vector<int64_t> validation_image_sizes(const RunConfig& cfg);

}  // namespace ofa
