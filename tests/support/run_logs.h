// Helpers of the tests that run the RunManager: the loss sequence a run
// logged, and checkpoint files compared byte for byte.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"

namespace ofa::test {

// (step, loss) of every "train" line of a run folder's logs/metrics.jsonl, in order.
inline std::vector<std::pair<int64_t, double>> train_losses(const std::string& run_path) {
  std::ifstream in(run_path + "/logs/metrics.jsonl");
  std::vector<std::pair<int64_t, double>> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "train") out.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  return out;
}

// Every tensor of two safetensors files equal, bit for bit, in the same order.
inline void expect_same_tensors(const std::string& a, const std::string& b) {
  SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    ASSERT_EQ(fa.tensors[i].first, fb.tensors[i].first);
    const Tensor& x = fa.tensors[i].second;
    const Tensor& y = fb.tensors[i].second;
    ASSERT_EQ(x.shape(), y.shape()) << fa.tensors[i].first;
    ASSERT_EQ(0, std::memcmp(x.raw_data(), y.raw_data(), static_cast<size_t>(x.numel()) * dtype_size(x.dtype())))
        << fa.tensors[i].first << " differs";
  }
}

}  // namespace ofa::test
