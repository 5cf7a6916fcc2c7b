// The library behind tools/ofa_eval (tensor mode, issue 4; the data mode is
// ofa/eval_data.h, dispatched from run_ofa_eval): network
// checkpoints that say what they hold, subnet JSON, evaluation, BN
// recalibration, one training step, subnet export and net info.
//
// Checkpoint metadata (safetensors __metadata__, every value a string):
//   supernet:      format = "OFAMobileNetV3", and the constructor arguments as
//                  JSON text: n_classes, width_mult, ks_list, expand_ratio_list,
//                  depth_list, bn_momentum, bn_eps, dropout_rate. Tensors carry
//                  the supernet's state_dict names (older reference names are
//                  mapped on load as the reference's load_state_dict maps them).
//   static subnet: format = "MobileNetV3", net_config = the reference's net
//                  config JSON; optionally subnet = the SUBNET.json it was cut
//                  with and image_size.
// tools/convert_pytorch_checkpoint.py writes the same keys.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "nn/mobilenet_v3.h"
#include "ofa/ofa_mbv3.h"

namespace ofa::nn {

constexpr const char* kSupernetFormat = "OFAMobileNetV3";
// Training checkpoints add this metadata key (the run's state, JSON) and the
// optimizer's tensors under names starting with kOptimizerPrefix; loading
// one as a network checkpoint skips them.
constexpr const char* kTrainStateKey = "train_state";
constexpr const char* kOptimizerPrefix = "optimizer/";
constexpr const char* kStaticNetFormat = "MobileNetV3";

SafetensorsMetadata supernet_metadata(const OFAMobileNetV3& net);
SafetensorsMetadata static_net_metadata(const MobileNetV3& net);
// Atomic writes of the state_dict with the metadata above (plus `extra`).
void save_supernet_checkpoint(const std::string& path, const OFAMobileNetV3& net, const SafetensorsMetadata& extra = {});
void save_static_checkpoint(const std::string& path, const MobileNetV3& net, const SafetensorsMetadata& extra = {});

// A loaded checkpoint: exactly one of supernet / static_net is set.
struct NetCheckpoint {
  std::string path;
  SafetensorsMetadata metadata;
  std::shared_ptr<OFAMobileNetV3> supernet;
  std::shared_ptr<MobileNetV3> static_net;

  bool is_supernet() const { return supernet != nullptr; }
  Module& module() const;
  Tensor forward(const Tensor& x) const;
  int64_t n_classes() const;
};
// Builds the network the metadata describes and loads the tensors strictly
// (every missing, unexpected or mis-shaped key listed in one error).
NetCheckpoint load_net_checkpoint(const std::string& path);
NetCheckpoint net_checkpoint_from_file(const SafetensorsFile& file);

// The reference's subnet form {"ks": [20], "e": [20], "d": [5], "r": [R]}
// ("r" optional: resolution 0 when absent).
struct SubnetSpec {
  SubnetSetting setting;
  int64_t resolution = 0;
};
SubnetSpec parse_subnet_json(const std::string& text, const std::string& where);
SubnetSpec read_subnet_file(const std::string& path);
// One line, Python's json.dumps spacing: {"ks": [...], "e": [...], "d": [...], "r": [R]}
// (no "r" when resolution is 0).
std::string subnet_json_line(const SubnetSetting& s, int64_t resolution);

// ---- the actions (also used by the tests)
// Each runs where the checkpoint's weights are (ck.module().device(); move
// them with ck.module().to(device)): the inputs go there, the results stay
// there.
// Logits in evaluation mode, without gradients.
Tensor eval_logits(const NetCheckpoint& ck, const Tensor& images);
// set_running_statistics over images [M, 3, R, R] in batches of batch_size.
void recalibrate_bn(const NetCheckpoint& ck, const Tensor& images, int64_t batch_size);

struct TrainStepHyper {
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 3e-5;
  double label_smoothing = 0.1;
  std::vector<std::string> no_decay_keys{"bn", "bias"};
  // Set only when RUN.yaml names them (the reference builds its net with
  // them); otherwise the checkpoint's values stay.
  std::optional<double> dropout, bn_momentum, bn_eps;
};
// One training step of the active network in training mode: forward,
// label-smoothed cross-entropy, backward, one SGD step (fresh optimizer).
// Returns loss [1], logits, grad.<name> (zeros for a parameter the step did
// not reach, where PyTorch leaves None), param.<name> and buffer.<name>
// (after the step), names as in the state_dict.
NamedTensorList train_step(const NetCheckpoint& ck, const Tensor& images, const Tensor& labels,
                           const TrainStepHyper& hyper);
// Reads RUN.yaml (the reference's train_ofa_net.py names, via
// ofa/run_config.h) into the step's hyper-parameters: lr = base_lr, momentum,
// nesterov = !no_nesterov, weight_decay, label_smoothing, no_decay_keys; and
// dropout / bn_momentum / bn_eps when the file sets them.
TrainStepHyper train_step_hyper_from_config(const std::string& path);

// ---- the command line
struct EvalOptions {
  // device: where the network computes (cpu, cuda, cuda:N); the data mode's
  // loaders then pin their batches. It overrides the configuration's 'device'.
  std::string checkpoint, subnet, tensors, dump, calib_tensors, config, export_subnet, device = "cpu";
  std::optional<int64_t> sample_seed;
  int64_t calib_batch_size = 0;
  int64_t image_size = 0;
  bool train_step = false, info = false, help = false;
  // Data mode (ofa/eval_data.h): --data DATASET and one of --grid,
  // --subnets LIST.json, --random N; the rest are optional.
  std::string data, data_path, subnet_list, split, csv, json_out, plot;
  bool grid = false;
  std::optional<int64_t> random_n, seed, calib_images, batch_size, workers;
  std::vector<int64_t> image_sizes;
  std::vector<std::string> sets;  // --set key=value, in order
  bool data_mode() const { return !data.empty(); }
};
std::string eval_usage();
// Throws ofa::Error naming the problem (unknown option, missing value,
// incompatible options).
EvalOptions parse_eval_args(const std::vector<std::string>& args);
// Runs the parsed command; --info prints to `out`. Throws ofa::Error on failure.
void run_ofa_eval(const EvalOptions& opt, std::ostream& out);
// main(): parse, run, print errors to stderr; returns the exit status.
int ofa_eval_main(int argc, char** argv);

}  // namespace ofa::nn
