#include "data/sampler.h"

#include <sstream>
#include <utility>

#include "data/torch_random.h"
#include "engine/common.h"

namespace ofa::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, SamplerOptions opt) : opt_(opt) {
  OFA_CHECK(dataset_size >= 0, "DistributedSampler: dataset size must be non-negative, got ", dataset_size);
  base_.resize(static_cast<size_t>(dataset_size));
  for (int64_t i = 0; i < dataset_size; ++i) base_[static_cast<size_t>(i)] = i;
  init();
}

DistributedSampler::DistributedSampler(std::vector<int64_t> sub_indexes, SamplerOptions opt)
    : opt_(opt), base_(std::move(sub_indexes)) {
  for (int64_t v : base_) OFA_CHECK(v >= 0, "DistributedSampler: sub index ", v, " is negative");
  init();
}

void DistributedSampler::init() {
  OFA_CHECK(opt_.world_size >= 1, "DistributedSampler: world_size must be >= 1, got ", opt_.world_size);
  OFA_CHECK(opt_.rank >= 0 && opt_.rank < opt_.world_size, "DistributedSampler: rank ", opt_.rank,
            " is outside [0, ", opt_.world_size, ")");
  const int64_t n = base_size(), w = opt_.world_size;
  // torch: ceil((n - w) / w) when dropping an uneven tail, else ceil(n / w).
  if (opt_.drop_last && n % w != 0)
    num_samples_ = n >= w ? (n - w + w - 1) / w : 0;
  else
    num_samples_ = (n + w - 1) / w;
}

std::vector<int64_t> DistributedSampler::epoch_indices(int64_t epoch) const {
  OFA_CHECK(epoch >= 0, "DistributedSampler: epoch must be non-negative, got ", epoch);
  const int64_t n = base_size(), total = total_size();
  std::vector<int64_t> pos;
  if (opt_.shuffle) {
    TorchGenerator g(opt_.seed + static_cast<uint64_t>(epoch));
    pos = randperm(n, g);
  } else {
    pos.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = i;
  }
  if (total > n) {
    OFA_CHECK(n > 0, "DistributedSampler: nothing to sample (empty index list)");
    // torch: indices += (indices * ceil(pad / n))[:pad], i.e. cycle from the start.
    const int64_t pad = total - n;
    for (int64_t k = 0; k < pad; ++k) pos.push_back(pos[static_cast<size_t>(k % n)]);
  } else {
    pos.resize(static_cast<size_t>(total));
  }
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(num_samples_));
  for (int64_t k = opt_.rank; k < total; k += opt_.world_size) out.push_back(base_[static_cast<size_t>(pos[static_cast<size_t>(k)])]);
  return out;
}

std::vector<int64_t> sub_train_indexes(int64_t train_size, int64_t n_images, uint64_t seed) {
  OFA_CHECK(train_size >= 0 && n_images >= 0, "sub_train_indexes: sizes must be non-negative, got train_size ",
            train_size, " and n_images ", n_images);
  TorchGenerator g(seed);
  std::vector<int64_t> p = randperm(train_size, g);
  if (n_images < train_size) p.resize(static_cast<size_t>(n_images));
  return p;
}

DistributedSampler sub_train_sampler(int64_t train_size, int64_t n_images, int64_t world_size, int64_t rank) {
  SamplerOptions o;
  o.world_size = world_size;
  o.rank = rank;
  return DistributedSampler(sub_train_indexes(train_size, n_images), o);
}

std::string LoaderPosition::to_string() const {
  std::ostringstream os;
  os << "epoch=" << epoch << " batch=" << batches_consumed << " of=" << batches_per_epoch << " n=" << dataset_size
     << " bs=" << batch_size << " seed=" << seed << " world=" << world_size << " rank=" << rank
     << " sseed=" << sampler_seed;
  return os.str();
}

LoaderPosition LoaderPosition::parse(const std::string& s) {
  LoaderPosition p;
  std::istringstream is(s);
  std::string tok;
  int seen = 0;
  while (is >> tok) {
    const size_t eq = tok.find('=');
    OFA_CHECK(eq != std::string::npos && eq + 1 < tok.size(), "LoaderPosition: bad field '", tok, "' in '", s, "'");
    const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    size_t used = 0;
    unsigned long long u = 0;
    try {
      u = std::stoull(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    OFA_CHECK(used == v.size() && v[0] != '-', "LoaderPosition: bad value '", v, "' for ", k, " in '", s, "'");
    if (k == "epoch") p.epoch = static_cast<int64_t>(u);
    else if (k == "batch") p.batches_consumed = static_cast<int64_t>(u);
    else if (k == "of") p.batches_per_epoch = static_cast<int64_t>(u);
    else if (k == "n") p.dataset_size = static_cast<int64_t>(u);
    else if (k == "bs") p.batch_size = static_cast<int64_t>(u);
    else if (k == "seed") p.seed = static_cast<uint64_t>(u);
    else if (k == "world") p.world_size = static_cast<int64_t>(u);
    else if (k == "rank") p.rank = static_cast<int64_t>(u);
    else if (k == "sseed") p.sampler_seed = static_cast<uint64_t>(u);
    else OFA_CHECK(false, "LoaderPosition: unknown field '", k, "' in '", s, "'");
    ++seen;
  }
  OFA_CHECK(seen == 9, "LoaderPosition: expected 9 fields (epoch batch of n bs seed world rank sseed) in '", s,
            "'");
  return p;
}

bool LoaderPosition::operator==(const LoaderPosition& o) const {
  return epoch == o.epoch && batches_consumed == o.batches_consumed && batches_per_epoch == o.batches_per_epoch &&
         dataset_size == o.dataset_size && batch_size == o.batch_size && seed == o.seed &&
         world_size == o.world_size && rank == o.rank && sampler_seed == o.sampler_seed;
}

}  // namespace ofa::data
