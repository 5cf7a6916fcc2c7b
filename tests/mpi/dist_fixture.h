// A tiny distributed training run for the MPI tests: the fake Fashion-MNIST
// set (written by rank 0 into a folder every rank sees) and a kernel-stage
// configuration small enough for 2-3 ranks on 2 cores.
#pragma once
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "distributed/distributed_run_manager.h"
#include "engine/safetensors.h"
#include "ofa/run_manager.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/mpi/mpi_test_util.h"
#include "tests/support/run_logs.h"

namespace ofa::test {

struct DistFixture {
  SharedTempDir tmp;
  std::string data_dir;
  DistFixture() {
    data_dir = tmp.path() + "/data";
    if (world()->rank() == 0) {
      std::filesystem::create_directories(data_dir);
      write_fake_fashion_mnist(data_dir, 96, 32);
    }
    world()->barrier();
  }
  // 1 epoch of 3 batches of 4 images per rank, 1 subnet per step, no teacher.
  RunConfig config(const std::string& run, const std::vector<std::string>& overrides = {}) const {
    const std::string yaml = "task: kernel\n"
                             "dataset: fashion_mnist\n"
                             "data_path: " + data_dir + "\n"
                             "path: " + tmp.path() + "/" + run + "\n"
                             "kd_ratio: 0\n"
                             "valid_size: 16\n"
                             "base_batch_size: 4\n"
                             "image_size: [24]\n"
                             "valid_image_size: [24]\n"
                             "n_epochs: 1\n"
                             "warmup_epochs: 0\n"
                             "dynamic_batch_size: 1\n"
                             "max_train_batches: 3\n"
                             "print_frequency: 1\n"
                             "bn_calib_images: 16\n"
                             "bn_calib_batch_size: 8\n"
                             "n_worker: 0\n"
                             "resize_scale: 0.5\n"
                             "dropout: 0.2\n"
                             "comm_timeout_s: 60\n"
                             "validate_before_training: false\n";
    return run_config_from_yaml_string(yaml, "test.yaml", overrides);
  }
};

// Runs one stage on every rank with a DistributedRunManager over world().
inline StageOutcome run_dist_stage(const RunConfig& cfg, bool resume, std::string* log = nullptr) {
  auto data = std::make_shared<const RunData>(open_run_data(cfg));
  std::ostringstream out;
  RunOptions o;
  o.out = &out;
  DistributedRunManager rm(cfg, data, o, world());
  rm.start(resume);
  const StageOutcome r = rm.train();
  if (log) *log = out.str();
  return r;
}

// (step, loss) of every "train" line of the run's metrics.jsonl.
inline std::vector<std::pair<int64_t, double>> train_losses(const RunConfig& cfg) { return train_losses(cfg.path); }

// A position-weighted float64 checksum of a tensor (any dtype, any strides).
inline double checksum(const Tensor& t) {
  const std::vector<double> v = t.to(DType::F64).contiguous().to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * static_cast<double>(1 + i % 13);
  return s;
}

// The checksums of every tensor, gathered: row r = rank r's.
inline std::vector<std::vector<double>> gathered_checksums(const nn::NamedTensors& ts) {
  std::vector<double> mine;
  for (const auto& kv : ts) mine.push_back(checksum(kv.second));
  Tensor in = from_vector<double>(mine, {static_cast<int64_t>(mine.size())});
  Tensor all = world()->allgather(in);
  std::vector<std::vector<double>> rows;
  const std::vector<double> flat = all.to_vector<double>();
  for (int64_t r = 0; r < world()->world_size(); ++r)
    rows.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(r * mine.size()),
                      flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * mine.size()));
  return rows;
}

}  // namespace ofa::test
