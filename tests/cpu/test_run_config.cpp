// RunConfig: the reference's defaults and per-task table (train_ofa_net.py),
// strict parsing with file:line messages, overrides, validation and round trip.
#include <cmath>
#include <fstream>

#include "ofa/run_config.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

RunConfig parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return run_config_from_yaml_string(yaml, "src.yaml", overrides);
}

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse(yaml, overrides); });
}

std::string example_path() { return std::string(OFA_TEST_DATA_DIR) + "/../../configs/example.yaml"; }

}  // namespace

// ---------------------------------------------------------------- defaults

TEST(RunConfig, DefaultsAreTheReferenceValues) {
  const RunConfig c;
  EXPECT_EQ(c.task, "depth");
  EXPECT_EQ(c.phase, 1);
  EXPECT_EQ(c.manual_seed, 0);
  EXPECT_EQ(c.lr_schedule_type, "cosine");
  EXPECT_EQ(c.base_batch_size, 64);
  EXPECT_EQ(c.valid_size, 10000);
  EXPECT_EQ(c.opt_type, "sgd");
  EXPECT_EQ(c.momentum, 0.9);
  EXPECT_FALSE(c.no_nesterov);
  EXPECT_EQ(c.weight_decay, 3e-5);
  EXPECT_EQ(c.label_smoothing, 0.1);
  EXPECT_EQ(c.no_decay_keys, "bn#bias");
  EXPECT_FALSE(c.fp16_allreduce);
  EXPECT_EQ(c.model_init, "he_fout");
  EXPECT_EQ(c.validation_frequency, 1);
  EXPECT_EQ(c.print_frequency, 10);
  EXPECT_EQ(c.n_worker, 8);
  EXPECT_EQ(c.resize_scale, 0.08);
  EXPECT_EQ(c.distort_color, "tf");
  EXPECT_EQ(c.image_size, (std::vector<int64_t>{128, 160, 192, 224}));
  EXPECT_TRUE(c.continuous_size);
  EXPECT_FALSE(c.not_sync_distributed_image_size);
  EXPECT_EQ(c.bn_momentum, 0.1);
  EXPECT_EQ(c.bn_eps, 1e-5);
  EXPECT_EQ(c.dropout, 0.1);
  EXPECT_EQ(c.base_stage_width, "proxyless");
  EXPECT_EQ(c.width_mult_list, (std::vector<double>{1.0}));
  EXPECT_EQ(c.dy_conv_scaling_mode, 1);
  EXPECT_FALSE(c.independent_distributed_sampling);
  EXPECT_EQ(c.kd_ratio, 1.0);
  EXPECT_EQ(c.kd_type, "ce");
  EXPECT_EQ(c.dataset, "fashion_mnist");
  EXPECT_EQ(c.device, "cpu");
  EXPECT_TRUE(c.resume_path.empty());
  EXPECT_TRUE(c.valid_image_size.empty());
}

// The struct's task-dependent defaults are the table's row for the default task.
TEST(RunConfig, DefaultStructMatchesDepthPhase1Row) {
  RunConfig c;
  RunConfig filled = c;
  apply_task_defaults(filled);
  EXPECT_TRUE(filled == c);
  EXPECT_NO_THROW(validate_run_config(c));
}

TEST(RunConfig, EmptyFileGivesDefaults) {
  EXPECT_TRUE(parse("") == RunConfig());
  EXPECT_TRUE(parse("# only a comment\n") == RunConfig());
  EXPECT_TRUE(parse("").explicit_keys.empty());
}

TEST(RunConfig, KeyTableListsEveryKeyOnce) {
  const auto& keys = run_config_keys();
  EXPECT_GE(keys.size(), 45u);
  std::set<std::string> names;
  for (const auto& k : keys) {
    EXPECT_TRUE(names.insert(k.name).second) << k.name;
    EXPECT_FALSE(k.doc.empty()) << k.name;
    EXPECT_FALSE(k.type.empty()) << k.name;
  }
  for (const char* must : {"task", "phase", "n_epochs", "base_lr", "warmup_epochs", "warmup_lr", "ks_list",
                           "expand_list", "depth_list", "dynamic_batch_size", "path", "manual_seed", "lr_schedule_type",
                           "base_batch_size", "valid_size", "opt_type", "momentum", "no_nesterov", "weight_decay",
                           "label_smoothing", "no_decay_keys", "fp16_allreduce", "model_init", "validation_frequency",
                           "print_frequency", "n_worker", "resize_scale", "distort_color", "image_size",
                           "continuous_size", "not_sync_distributed_image_size", "bn_momentum", "bn_eps", "dropout",
                           "base_stage_width", "width_mult_list", "dy_conv_scaling_mode",
                           "independent_distributed_sampling", "kd_ratio", "kd_type", "teacher_path"})
    EXPECT_TRUE(names.count(must)) << "the reference's key " << must << " is missing";
}

// ---------------------------------------------------------------- task table

struct TaskRow {
  const char* task;
  int64_t phase;
  int64_t n_epochs;
  double base_lr;
  int64_t warmup_epochs;
  std::vector<int64_t> ks, expand, depth;
  int64_t dynamic_batch_size;
  const char* path;
};

class RunConfigTask : public ::testing::TestWithParam<TaskRow> {};

TEST_P(RunConfigTask, FillsTheReferenceRow) {
  const TaskRow& r = GetParam();
  const RunConfig c = parse(str_cat("task: ", r.task, "\nphase: ", r.phase, "\n"));
  EXPECT_EQ(c.n_epochs, r.n_epochs);
  EXPECT_EQ(c.base_lr, r.base_lr);
  EXPECT_EQ(c.warmup_epochs, r.warmup_epochs);
  EXPECT_EQ(c.warmup_lr, -1.0);
  EXPECT_EQ(effective_warmup_lr(c), r.base_lr);
  EXPECT_EQ(c.ks_list, r.ks);
  EXPECT_EQ(c.expand_list, r.expand);
  EXPECT_EQ(c.depth_list, r.depth);
  EXPECT_EQ(c.dynamic_batch_size, r.dynamic_batch_size);
  EXPECT_EQ(c.path, r.path);
}

TEST_P(RunConfigTask, OverrideSelectsTheRowToo) {
  const TaskRow& r = GetParam();
  const RunConfig c = parse("task: kernel\n", {str_cat("task=", r.task), str_cat("phase=", r.phase)});
  EXPECT_EQ(c.n_epochs, r.n_epochs);
  EXPECT_EQ(c.expand_list, r.expand);
  EXPECT_EQ(c.depth_list, r.depth);
  EXPECT_EQ(c.dynamic_batch_size, r.dynamic_batch_size);
}

TEST_P(RunConfigTask, ExplicitKeysBeatTheRow) {
  const TaskRow& r = GetParam();
  const RunConfig c = parse(str_cat("task: ", r.task, "\nphase: ", r.phase,
                                    "\nn_epochs: 3\nbase_lr: 0.5\nks_list: [7]\ndynamic_batch_size: 9\npath: out\n"));
  EXPECT_EQ(c.n_epochs, 3);
  EXPECT_EQ(c.base_lr, 0.5);
  EXPECT_EQ(c.ks_list, (std::vector<int64_t>{7}));
  EXPECT_EQ(c.dynamic_batch_size, 9);
  EXPECT_EQ(c.path, "out");
  EXPECT_EQ(c.warmup_epochs, r.warmup_epochs);  // not given: still the row's
  EXPECT_EQ(c.depth_list, r.depth);
}

// train_ofa_net.py; /work/shared/docs/ofa-reference.md's table.
INSTANTIATE_TEST_SUITE_P(
    Reference, RunConfigTask,
    ::testing::Values(TaskRow{"kernel", 1, 120, 3e-2, 5, {3, 5, 7}, {6}, {4}, 1, "runs/ofa/normal2kernel"},
                      TaskRow{"kernel", 2, 120, 3e-2, 5, {3, 5, 7}, {6}, {4}, 1, "runs/ofa/normal2kernel"},
                      TaskRow{"depth", 1, 25, 2.5e-3, 0, {3, 5, 7}, {6}, {3, 4}, 2, "runs/ofa/kernel2kernel_depth/phase1"},
                      TaskRow{"depth", 2, 120, 7.5e-3, 5, {3, 5, 7}, {6}, {2, 3, 4}, 2,
                              "runs/ofa/kernel2kernel_depth/phase2"},
                      TaskRow{"expand", 1, 25, 2.5e-3, 0, {3, 5, 7}, {4, 6}, {2, 3, 4}, 4,
                              "runs/ofa/kernel_depth2kernel_depth_width/phase1"},
                      TaskRow{"expand", 2, 120, 7.5e-3, 5, {3, 5, 7}, {3, 4, 6}, {2, 3, 4}, 4,
                              "runs/ofa/kernel_depth2kernel_depth_width/phase2"}),
    [](const ::testing::TestParamInfo<TaskRow>& i) { return str_cat(i.param.task, "_phase", i.param.phase); });

TEST(RunConfig, ApplyTaskDefaultsRespectsExplicitKeys) {
  RunConfig c;
  c.task = "expand";
  c.phase = 2;
  c.n_epochs = 7;
  c.explicit_keys = {"n_epochs"};
  apply_task_defaults(c);
  EXPECT_EQ(c.n_epochs, 7);
  EXPECT_EQ(c.base_lr, 7.5e-3);
  EXPECT_EQ(c.expand_list, (std::vector<int64_t>{3, 4, 6}));
  c.task = "width";
  EXPECT_TRUE(has(error_of([&] { apply_task_defaults(c); }), "teacher, kernel, depth, expand"));
}

// ---------------------------------------------------------------- parsing

TEST(RunConfig, ParsesEveryValueKind) {
  const RunConfig c = parse(
      "task: expand\n"
      "phase: 2\n"
      "base_lr: 1e-2\n"
      "warmup_lr: 0\n"
      "no_nesterov: true\n"
      "continuous_size: False\n"
      "image_size: \"30,31\"\n"   // the reference's comma string
      "ks_list: [3, 7]\n"         // a YAML list
      "depth_list: 4\n"           // one value
      "width_mult_list: 1.2\n"
      "teacher_path: /ckpt/teacher.safetensors\n"
      "valid_size: 0.25\n"
      "resume_path:\n");         // null string -> empty
  EXPECT_EQ(c.task, "expand");
  EXPECT_EQ(c.phase, 2);
  EXPECT_EQ(c.base_lr, 1e-2);
  EXPECT_EQ(c.warmup_lr, 0.0);
  EXPECT_EQ(effective_warmup_lr(c), 0.0);
  EXPECT_TRUE(c.no_nesterov);
  EXPECT_FALSE(use_nesterov(c));
  EXPECT_FALSE(c.continuous_size);
  EXPECT_EQ(c.image_size, (std::vector<int64_t>{30, 31}));
  EXPECT_EQ(c.ks_list, (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(c.depth_list, (std::vector<int64_t>{4}));
  EXPECT_EQ(c.width_mult_list, (std::vector<double>{1.2}));
  EXPECT_EQ(c.teacher_path, "/ckpt/teacher.safetensors");
  EXPECT_EQ(c.valid_size, 0.25);
  EXPECT_EQ(c.resume_path, "");
  EXPECT_TRUE(c.explicit_keys.count("resume_path"));
  EXPECT_FALSE(c.explicit_keys.count("n_epochs"));
}

struct TypeCase {
  const char* name;
  const char* yaml;  // the bad key is on line 3
  const char* key;
  const char* expected;  // what the message must say was expected
};

class RunConfigTypeError : public ::testing::TestWithParam<TypeCase> {};

TEST_P(RunConfigTypeError, NamesKeyFileLineAndExpectedType) {
  const TypeCase& t = GetParam();
  const std::string msg = parse_error(str_cat("task: kernel\nphase: 1\n", t.yaml, "\n"));
  EXPECT_TRUE(has(msg, "src.yaml:3:")) << msg;
  EXPECT_TRUE(has(msg, str_cat("key '", t.key, "'"))) << msg;
  EXPECT_TRUE(has(msg, t.expected)) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, RunConfigTypeError,
    ::testing::Values(TypeCase{"int_given_word", "n_epochs: ten", "n_epochs", "expected an integer, got 'ten'"},
                      TypeCase{"int_given_float", "n_epochs: 2.5", "n_epochs", "expected an integer"},
                      TypeCase{"int_given_quoted", "n_epochs: \"5\"", "n_epochs", "expected an integer, got the quoted"},
                      TypeCase{"int_overflow", "n_epochs: 99999999999999999999", "n_epochs", "expected an integer"},
                      TypeCase{"int_given_list", "validation_frequency: [1]", "validation_frequency", "expected an integer, got a list"},
                      TypeCase{"int_given_null", "manual_seed:", "manual_seed", "expected an integer, got nothing"},
                      TypeCase{"real_given_word", "base_lr: fast", "base_lr", "expected a finite number"},
                      TypeCase{"real_given_inf", "base_lr: .inf", "base_lr", "expected a finite number"},
                      TypeCase{"real_given_nan", "momentum: .nan", "momentum", "expected a finite number"},
                      TypeCase{"real_given_map", "bn_eps: {a: 1}", "bn_eps", "got a mapping"},
                      TypeCase{"bool_given_yes", "no_nesterov: yes", "no_nesterov", "expected true or false"},
                      TypeCase{"bool_given_one", "continuous_size: 1", "continuous_size", "expected true or false"},
                      TypeCase{"bool_given_quoted", "fp16_allreduce: \"true\"", "fp16_allreduce",
                               "expected true or false"},
                      TypeCase{"string_given_list", "dataset: [fashion_mnist]", "dataset", "expected a string, got a list"},
                      TypeCase{"list_bad_element", "ks_list: [3, five]", "ks_list", "element 1: expected an integer"},
                      TypeCase{"list_given_map", "ks_list: {a: 3}", "ks_list", "expected a list of integers"},
                      TypeCase{"list_bad_comma_item", "expand_list: \"4,x\"", "expand_list", "item 1"},
                      TypeCase{"real_list_bad", "width_mult_list: [wide]", "width_mult_list", "expected a finite number"}),
    [](const ::testing::TestParamInfo<TypeCase>& i) { return std::string(i.param.name); });

TEST(RunConfig, UnknownKeySuggestsTheClosest) {
  std::string msg = parse_error("task: kernel\nn_epoch: 3\n");
  EXPECT_TRUE(has(msg, "src.yaml:2:")) << msg;
  EXPECT_TRUE(has(msg, "unknown key 'n_epoch'")) << msg;
  EXPECT_TRUE(has(msg, "did you mean 'n_epochs'?")) << msg;

  msg = parse_error("lr_schedule: cosine\n");
  EXPECT_TRUE(has(msg, "did you mean 'lr_schedule_type'?")) << msg;

  // The reference's command-line spelling.
  msg = parse_error("--warmup-epochs: 2\n");
  EXPECT_TRUE(has(msg, "did you mean 'warmup_epochs'?")) << msg;

  msg = parse_error("completely_unrelated_setting_name: 1\n");
  EXPECT_TRUE(has(msg, "closest valid key is '")) << msg;
  EXPECT_TRUE(has(msg, "ofa/run_config.h")) << msg;
}

TEST(RunConfig, StructuralErrorsNameTheLine) {
  std::string msg = parse_error("task: kernel\nn_epochs: 3\nn_epochs: 4\n");
  EXPECT_TRUE(has(msg, "src.yaml:3:")) << msg;
  EXPECT_TRUE(has(msg, "given twice (first at src.yaml:2:")) << msg;

  msg = parse_error("- task\n- kernel\n");
  EXPECT_TRUE(has(msg, "must be a YAML mapping")) << msg;

  msg = parse_error("task: kernel\nks_list: [3, 5\nphase: 1\n");
  EXPECT_TRUE(has(msg, "YAML syntax error")) << msg;
  EXPECT_TRUE(has(msg, "src.yaml:")) << msg;

  msg = parse_error("[1, 2]: 3\n");
  EXPECT_TRUE(has(msg, "keys must be plain names")) << msg;
}

TEST(RunConfig, MissingFileNamesThePath) {
  const std::string msg = error_of([] { load_run_config("/nonexistent/dir/run.yaml"); });
  EXPECT_TRUE(has(msg, "/nonexistent/dir/run.yaml")) << msg;
}

TEST(RunConfig, FileErrorsNameTheFilePath) {
  const std::string path = ::testing::TempDir() + "/run_config_bad.yaml";
  {
    std::ofstream f(path);
    f << "task: kernel\n\n# comment\nbase_lr: -0.5\n";
  }
  const std::string msg = error_of([&] { load_run_config(path); });
  EXPECT_TRUE(has(msg, path + ":4:")) << msg;
  EXPECT_TRUE(has(msg, "key 'base_lr': must be a number > 0 (got -0.5)")) << msg;
}

// ---------------------------------------------------------------- overrides

TEST(RunConfig, OverridesWin) {
  const RunConfig c = parse("task: kernel\nn_epochs: 3\nks_list: [3]\ndataset: imagenet\n",
                            {"n_epochs=4", "ks_list=5,7", "depth_list=[4]", "dataset=fashion_mnist", " base_lr = 0.1",
                             "n_epochs=6", "resume_path="});
  EXPECT_EQ(c.n_epochs, 6);  // the last override wins
  EXPECT_EQ(c.ks_list, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(c.depth_list, (std::vector<int64_t>{4}));
  EXPECT_EQ(c.dataset, "fashion_mnist");
  EXPECT_EQ(c.base_lr, 0.1);
  EXPECT_EQ(c.resume_path, "");
  EXPECT_EQ(c.warmup_epochs, 5);  // the kernel row still fills the rest
}

TEST(RunConfig, BadOverridesNameSet) {
  std::string msg = parse_error("", {"n_epochs"});
  EXPECT_TRUE(has(msg, "--set n_epochs: expected key=value")) << msg;

  msg = parse_error("", {"n_epochs=abc"});
  EXPECT_TRUE(has(msg, "--set n_epochs=abc")) << msg;
  EXPECT_TRUE(has(msg, "expected an integer")) << msg;

  msg = parse_error("", {"n_epoch=3"});
  EXPECT_TRUE(has(msg, "--set n_epoch=3")) << msg;
  EXPECT_TRUE(has(msg, "did you mean 'n_epochs'?")) << msg;

  msg = parse_error("base_lr: 0.1\n", {"base_lr=-1"});
  EXPECT_TRUE(has(msg, "--set base_lr=-1: key 'base_lr': must be a number > 0")) << msg;
  EXPECT_FALSE(has(msg, "src.yaml")) << msg;

  msg = parse_error("", {"ks_list=[3,"});
  EXPECT_TRUE(has(msg, "--set ks_list=[3,")) << msg;
  EXPECT_TRUE(has(msg, "not valid YAML")) << msg;
}

// ---------------------------------------------------------------- impossible values

struct ValueCase {
  const char* name;
  const char* yaml;  // on line 2
  const char* key;
  const char* valid;  // the part of the message that says what would be valid
};

class RunConfigImpossible : public ::testing::TestWithParam<ValueCase> {};

TEST_P(RunConfigImpossible, NamesKeyLineAndWhatIsValid) {
  const ValueCase& v = GetParam();
  const std::string msg = parse_error(str_cat("# line 1\n", v.yaml, "\n"));
  EXPECT_TRUE(has(msg, "src.yaml:2:")) << msg;
  EXPECT_TRUE(has(msg, str_cat("key '", v.key, "'"))) << msg;
  EXPECT_TRUE(has(msg, v.valid)) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Values, RunConfigImpossible,
    ::testing::Values(
        ValueCase{"negative_epochs", "n_epochs: -1", "n_epochs", "positive integer (got -1)"},
        ValueCase{"zero_epochs", "n_epochs: 0", "n_epochs", "positive integer"},
        ValueCase{"zero_lr", "base_lr: 0", "base_lr", "> 0 (got 0.0)"},
        ValueCase{"negative_lr", "base_lr: -0.1", "base_lr", "> 0 (got -0.1)"},
        ValueCase{"negative_warmup", "warmup_epochs: -2", "warmup_epochs", ">= 0 (got -2)"},
        ValueCase{"kernel_9", "ks_list: [3, 9]", "ks_list", "kernel sizes must be from {3, 5, 7} (got 9)"},
        ValueCase{"kernel_empty", "ks_list: []", "ks_list", "at least one kernel size from {3, 5, 7}"},
        ValueCase{"kernel_twice", "ks_list: [3, 3]", "ks_list", "kernel size 3 twice"},
        ValueCase{"expand_5", "expand_list: [4, 5]", "expand_list", "expand ratios must be from {3, 4, 6} (got 5)"},
        ValueCase{"depth_1", "depth_list: 1", "depth_list", "depths must be from {2, 3, 4} (got 1)"},
        ValueCase{"image_not_4", "image_size: [128, 130]", "image_size", "multiples of 4 when continuous_size"},
        ValueCase{"image_zero", "image_size: [0]", "image_size", "positive"},
        ValueCase{"image_empty", "image_size: []", "image_size", "at least one image size"},
        ValueCase{"valid_image_zero", "valid_image_size: [32, 0]", "valid_image_size", "positive"},
        ValueCase{"momentum_1", "momentum: 1.0", "momentum", "in [0, 1)"},
        ValueCase{"smoothing_negative", "label_smoothing: -0.1", "label_smoothing", "in [0, 1)"},
        ValueCase{"dropout_1", "dropout: 1", "dropout", "in [0, 1)"},
        ValueCase{"bn_momentum_0", "bn_momentum: 0", "bn_momentum", "in (0, 1]"},
        ValueCase{"resize_scale_big", "resize_scale: 1.5", "resize_scale", "in (0, 1]"},
        ValueCase{"bn_eps_0", "bn_eps: 0", "bn_eps", "> 0"},
        ValueCase{"task_width", "task: width", "task", "one of teacher, kernel, depth, expand"},
        ValueCase{"phase_3", "phase: 3", "phase", "must be 1 or 2 (got 3)"},
        ValueCase{"valid_size_fraction", "valid_size: 10.5", "valid_size", "whole number"},
        ValueCase{"valid_size_negative", "valid_size: -1", "valid_size", ">= 0"},
        ValueCase{"opt_adamw", "opt_type: adamw", "opt_type", "one of sgd, adam"},
        ValueCase{"schedule_step", "lr_schedule_type: step", "lr_schedule_type", "one of cosine, none"},
        ValueCase{"distort_color", "distort_color: strong", "distort_color", "one of tf, torch, None"},
        ValueCase{"kd_type", "kd_type: kl", "kd_type", "one of ce, mse"},
        ValueCase{"model_init", "model_init: xavier", "model_init", "one of he_fout, he_fin"},
        ValueCase{"dataset", "dataset: cifar10", "dataset", "one of fashion_mnist, imagenet"},
        ValueCase{"device", "device: gpu", "device", "cpu, cuda or cuda:N"},
        ValueCase{"scaling_mode", "dy_conv_scaling_mode: -1", "dy_conv_scaling_mode", "must be 1"},
        ValueCase{"two_widths", "width_mult_list: [1.0, 1.2]", "width_mult_list", "exactly one width multiplier"},
        ValueCase{"no_decay_empty_part", "no_decay_keys: bn##bias", "no_decay_keys", "separated by '#'"},
        ValueCase{"empty_path", "path: ''", "path", "must not be empty"},
        ValueCase{"zero_batch", "base_batch_size: 0", "base_batch_size", "positive integer"},
        ValueCase{"zero_dynamic_batch", "dynamic_batch_size: 0", "dynamic_batch_size", "positive integer"},
        ValueCase{"zero_print_frequency", "print_frequency: 0", "print_frequency", "positive integer"},
        ValueCase{"negative_kd", "kd_ratio: -1", "kd_ratio", ">= 0"},
        ValueCase{"negative_decay", "weight_decay: -1e-5", "weight_decay", ">= 0"},
        ValueCase{"negative_seed", "manual_seed: -1", "manual_seed", ">= 0"},
        ValueCase{"negative_workers", "n_worker: -1", "n_worker", ">= 0"},
        ValueCase{"stage_width", "base_stage_width: wide", "base_stage_width", "one of proxyless, google"}),
    [](const ::testing::TestParamInfo<ValueCase>& i) { return std::string(i.param.name); });

TEST(RunConfig, ImageSizesNeedNotBeMultiplesOf4WhenDiscrete) {
  const RunConfig c = parse("image_size: [28, 30]\ncontinuous_size: false\n");
  EXPECT_EQ(c.image_size, (std::vector<int64_t>{28, 30}));
  // The cross-key check points at image_size, whichever key is wrong.
  const std::string msg = parse_error("image_size: [28, 30]\n");
  EXPECT_TRUE(has(msg, "src.yaml:1:")) << msg;
  EXPECT_TRUE(has(msg, "try 28 or 32")) << msg;
}

TEST(RunConfig, ValidateRunConfigCatchesProgrammaticValues) {
  RunConfig c;
  c.ks_list = {4};
  std::string msg = error_of([&] { validate_run_config(c); });
  EXPECT_TRUE(has(msg, "run configuration: key 'ks_list'")) << msg;
  c = RunConfig();
  c.base_lr = std::nan("");
  msg = error_of([&] { validate_run_config(c); });
  EXPECT_TRUE(has(msg, "key 'base_lr'")) << msg;
}

// ---------------------------------------------------------------- round trip

TEST(RunConfig, RoundTripOfDefaults) {
  const RunConfig c;
  const std::string yaml = run_config_to_yaml(c);
  for (const auto& k : run_config_keys()) EXPECT_TRUE(has(yaml, "\n" + k.name + ": ")) << k.name;
  const RunConfig back = parse(yaml);
  EXPECT_TRUE(back == c) << yaml;
  EXPECT_EQ(back.explicit_keys.size(), run_config_keys().size());
}

TEST(RunConfig, RoundTripOfUnusualValues) {
  RunConfig c;
  c.task = "expand";
  c.phase = 2;
  apply_task_defaults(c);
  c.base_lr = 0.1 + 0.2;  // needs 17 digits
  c.weight_decay = 1e-300;
  c.warmup_lr = -1.0 / 3.0;
  c.valid_size = 0.125;
  c.path = "runs/a b: #c \"q\" 'x'\\";
  c.teacher_path = "";
  c.data_path = "- [not a list]\n\tnext line \xc3\xa9";
  c.no_decay_keys = "None";
  c.image_size = {8};
  c.width_mult_list = {1.25};
  c.valid_image_size = {};
  c.no_nesterov = true;
  c.manual_seed = 123456789012LL;
  c.device = "cuda:3";
  ASSERT_NO_THROW(validate_run_config(c));
  const std::string yaml = run_config_to_yaml(c);
  const RunConfig back = parse(yaml);
  EXPECT_TRUE(back == c) << yaml;
  EXPECT_EQ(back.path, c.path);
  EXPECT_EQ(back.base_lr, c.base_lr);
  EXPECT_EQ(back.warmup_lr, c.warmup_lr);
  // And a second trip gives the same text.
  EXPECT_EQ(run_config_to_yaml(back), yaml);
}

TEST(RunConfig, EqualityComparesValues) {
  RunConfig a, b;
  EXPECT_TRUE(a == b);
  b.explicit_keys.insert("task");  // not a value
  EXPECT_TRUE(a == b);
  b.depth_list = {2, 3, 4};
  EXPECT_TRUE(a != b);
}

// ---------------------------------------------------------------- example and helpers

TEST(RunConfig, ExampleConfigLoads) {
  const RunConfig c = load_run_config(example_path());
  EXPECT_EQ(c.dataset, "fashion_mnist");
  EXPECT_EQ(c.task, "kernel");
  EXPECT_EQ(c.n_epochs, 2);
  EXPECT_EQ(c.ks_list, (std::vector<int64_t>{3, 5, 7}));  // from the kernel row
  EXPECT_EQ(c.dynamic_batch_size, 1);
  EXPECT_EQ(validation_image_sizes(c), (std::vector<int64_t>{32}));
  EXPECT_TRUE(load_run_config(example_path(), {"n_epochs=1"}).n_epochs == 1);
  const RunConfig back = parse(run_config_to_yaml(c));
  EXPECT_TRUE(back == c);
}

TEST(RunConfig, NoDecayKeyList) {
  RunConfig c;
  EXPECT_EQ(no_decay_key_list(c), (std::vector<std::string>{"bn", "bias"}));
  c.no_decay_keys = "";
  EXPECT_TRUE(no_decay_key_list(c).empty());
  c.no_decay_keys = "None";
  EXPECT_TRUE(no_decay_key_list(c).empty());
  c.no_decay_keys = "bn";
  EXPECT_EQ(no_decay_key_list(c), (std::vector<std::string>{"bn"}));
  c.no_decay_keys = "bn#bias#se";
  EXPECT_EQ(no_decay_key_list(c), (std::vector<std::string>{"bn", "bias", "se"}));
}

TEST(RunConfig, DerivedValues) {
  RunConfig c;
  c.base_lr = 0.01;
  EXPECT_DOUBLE_EQ(init_lr(c, 8), 0.08);
  EXPECT_TRUE(has(error_of([&] { init_lr(c, 0); }), "world_size"));
  EXPECT_EQ(effective_warmup_lr(c), 0.01);
  c.warmup_lr = 0.002;
  EXPECT_EQ(effective_warmup_lr(c), 0.002);
  EXPECT_EQ(train_batch_size(c), 64);
  EXPECT_EQ(test_batch_size(c), 256);
  EXPECT_TRUE(use_nesterov(c));
  EXPECT_EQ(validation_image_sizes(c), (std::vector<int64_t>{160, 224}));
  c.image_size = {192};
  EXPECT_EQ(validation_image_sizes(c), (std::vector<int64_t>{224}));
  c.valid_image_size = {28, 32};
  EXPECT_EQ(validation_image_sizes(c), (std::vector<int64_t>{28, 32}));
}
