#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <utility>

#include "engine/py_random.h"
#include "engine/storage.h"

namespace ofa::data {

namespace {

// splitmix64's finaliser: nearby inputs give unrelated seeds.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t rank, int64_t position) {
  uint64_t h = mix64(seed);
  h = mix64(h ^ static_cast<uint64_t>(epoch));
  h = mix64(h ^ static_cast<uint64_t>(rank));
  return mix64(h ^ static_cast<uint64_t>(position));
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DistributedSampler sampler, LoaderOptions opt)
    : ds_(std::move(dataset)), sampler_(std::move(sampler)), opt_(std::move(opt)) {
  OFA_CHECK(ds_ != nullptr, "DataLoader: no data set");
  OFA_CHECK(opt_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", opt_.batch_size);
  OFA_CHECK(opt_.n_worker >= 0, "DataLoader: n_worker must be >= 0, got ", opt_.n_worker);
  OFA_CHECK(opt_.prefetch >= 0, "DataLoader: prefetch must be >= 0, got ", opt_.prefetch);
  OFA_CHECK(!opt_.pin_memory || cuda_available(),
            "DataLoader: pin_memory needs a CUDA device and none is visible (train on device: cpu, or set "
            "OFA_CUDA_EMULATION=1 to run the CUDA backend on the CPU emulation)");
  if (opt_.mode == LoaderMode::Train) {
    OFA_CHECK(!opt_.image_size.empty(), "DataLoader: image_size needs at least one resolution");
    for (int64_t r : opt_.image_size) OFA_CHECK(r >= 1, "DataLoader: image_size ", r, " must be >= 1");
  } else {
    OFA_CHECK(opt_.eval_size >= 1, "DataLoader: eval_size must be >= 1, got ", opt_.eval_size);
  }
  const int64_t n = ds_->size();
  OFA_CHECK(n > 0, "DataLoader: the data set ", ds_->root(), " is empty");
  base_pos_.assign(static_cast<size_t>(n), -1);
  const std::vector<int64_t>& base = sampler_.base_indexes();
  for (size_t p = 0; p < base.size(); ++p) {
    OFA_CHECK(base[p] < n, "DataLoader: sampler index ", base[p], " is outside the data set ", ds_->root(),
              " of ", n, " images");
    int64_t& slot = base_pos_[static_cast<size_t>(base[p])];
    if (slot < 0) slot = static_cast<int64_t>(p);
  }
  if (opt_.bad_files == BadFilePolicy::Auto)
    opt_.bad_files = opt_.mode == LoaderMode::Train ? BadFilePolicy::Replace : BadFilePolicy::Drop;
  depth_ = opt_.prefetch > 0 ? opt_.prefetch : std::max<int64_t>(1, 2 * opt_.n_worker);
  stats_.resize(static_cast<size_t>(std::max<int64_t>(1, opt_.n_worker)));
  for (int64_t w = 0; w < opt_.n_worker; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = sampler_.num_samples(), B = opt_.batch_size;
  return opt_.drop_last ? n / B : (n + B - 1) / B;
}

void DataLoader::start(int64_t epoch, int64_t first_batch) {
  auto ctx = std::make_shared<EpochCtx>();
  ctx->epoch = epoch;
  ctx->indices = sampler_.epoch_indices(epoch);
  {
    std::lock_guard<std::mutex> lk(mu_);
    ctx->generation = ++generation_;
    ctx_ = ctx;
    ready_.clear();  // batches of the previous epoch still in flight are dropped when they finish
    next_job_ = consumed_ = first_batch;
    end_job_ = batches_per_epoch();
  }
  cv_.notify_all();
  started_ = true;
  skipped_epoch_ = images_epoch_ = warned_epoch_ = 0;
}

void DataLoader::set_epoch(int64_t epoch) {
  OFA_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be non-negative, got ", epoch);
  start(epoch, 0);
}

LoaderPosition DataLoader::position() const {
  LoaderPosition p;
  std::lock_guard<std::mutex> lk(mu_);
  p.epoch = ctx_ ? ctx_->epoch : 0;
  p.batches_consumed = started_ ? consumed_ : 0;
  p.batches_per_epoch = batches_per_epoch();
  p.dataset_size = ds_->size();
  p.batch_size = opt_.batch_size;
  p.seed = opt_.seed;
  p.world_size = sampler_.options().world_size;
  p.rank = sampler_.options().rank;
  p.sampler_seed = sampler_.options().seed;
  return p;
}

void DataLoader::restore(const LoaderPosition& pos) {
  const LoaderPosition here = position();
  OFA_CHECK(pos.dataset_size == here.dataset_size && pos.batch_size == here.batch_size &&
                pos.batches_per_epoch == here.batches_per_epoch && pos.seed == here.seed &&
                pos.world_size == here.world_size && pos.rank == here.rank && pos.sampler_seed == here.sampler_seed,
            "DataLoader::restore: the position (", pos.to_string(), ") was saved by a loader over another data set or ",
            "configuration than this one (", here.to_string(), "); the data set ", ds_->root(),
            ", batch size, sampler (world size, rank, seed) and seed must be the same to resume mid-epoch");
  OFA_CHECK(pos.epoch >= 0 && pos.batches_consumed >= 0 && pos.batches_consumed <= here.batches_per_epoch,
            "DataLoader::restore: position ", pos.to_string(), " is out of range");
  start(pos.epoch, pos.batches_consumed);  // the consumed batches are never built
}

std::vector<DataLoader::WorkerStats> DataLoader::worker_stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

Batch DataLoader::build_batch(int64_t epoch, int64_t batch_index) const {
  OFA_CHECK(batch_index >= 0 && batch_index < batches_per_epoch(), "DataLoader::build_batch: batch ", batch_index,
            " is outside [0, ", batches_per_epoch(), ")");
  EpochCtx ctx;
  ctx.epoch = epoch;
  ctx.indices = sampler_.epoch_indices(epoch);
  return build(ctx, batch_index, -1);
}

Batch DataLoader::build(const EpochCtx& ctx, int64_t b, int64_t worker) const {
  const int64_t B = opt_.batch_size, n = static_cast<int64_t>(ctx.indices.size());
  const int64_t begin = b * B, end = std::min(n, begin + B), count = end - begin;
  Batch out;
  out.epoch = ctx.epoch;
  out.batch_index = b;
  out.worker = worker;
  const bool train = opt_.mode == LoaderMode::Train;
  int64_t R = opt_.eval_size;
  if (train)
    R = opt_.image_size.size() == 1 ? opt_.image_size[0]
                                    : batch_resolution(b, ctx.epoch, opt_.image_size, opt_.continuous);
  out.resolution = R;
  const int64_t plane = 3 * R * R;
  auto host_images = [&](int64_t n) {
    return opt_.pin_memory ? empty_pinned({n, 3, R, R}, DType::F32, MemoryFormat::ChannelsLast)
                           : empty({n, 3, R, R}, DType::F32, Device::cpu(), MemoryFormat::ChannelsLast);
  };
  Tensor images = host_images(count);
  float* dst = images.data<float>();
  std::vector<int64_t> labels;
  labels.reserve(static_cast<size_t>(count));
  out.indices.reserve(static_cast<size_t>(count));
  const std::vector<int64_t>& base = sampler_.base_indexes();
  const int64_t nb = static_cast<int64_t>(base.size());

  for (int64_t p = begin; p < end; ++p) {
    const int64_t idx = ctx.indices[static_cast<size_t>(p)];
    Image img;
    int64_t used = idx;
    bool ok = false;
    try {
      img = ds_->load_image(idx);
      ok = true;
    } catch (const DecodeError& e) {
      out.skipped.push_back({idx, ds_->sample_name(idx), e.reason(), -1});
    }
    if (!ok && opt_.bad_files == BadFilePolicy::Replace) {
      const size_t first_skip = out.skipped.size() - 1;
      const int64_t p0 = base_pos_[static_cast<size_t>(idx)];
      for (int64_t k = 1; k < nb && !ok; ++k) {
        const int64_t cand = base[static_cast<size_t>((p0 + k) % nb)];
        try {
          img = ds_->load_image(cand);
          ok = true;
          used = cand;
        } catch (const DecodeError& e) {
          out.skipped.push_back({cand, ds_->sample_name(cand), e.reason(), -1});
        }
      }
      OFA_CHECK(ok, "DataLoader: none of the ", nb, " images the sampler draws from ", ds_->root(),
                " can be decoded (every file is bad; the first: ", out.skipped[first_skip].name, ": ",
                out.skipped[first_skip].reason, ")");
      out.skipped[first_skip].replaced_by = used;
    }
    if (!ok) continue;  // Drop: the batch gets smaller
    const int64_t row = static_cast<int64_t>(labels.size());
    float* d = dst + row * plane;
    if (train) {
      PyRandom rng(sample_seed(opt_.seed, ctx.epoch, sampler_.options().rank, p));
      train_transform(img, R, opt_.train, rng, d, /*channels_last=*/true);
    } else {
      eval_transform(img, R, d, /*channels_last=*/true, opt_.eval_crop_ratio);
    }
    labels.push_back(ds_->label(used));
    out.indices.push_back(used);
  }
  const int64_t rows = static_cast<int64_t>(labels.size());
  if (rows < count) {
    Tensor smaller = host_images(rows);
    if (rows > 0) std::memcpy(smaller.data<float>(), dst, static_cast<size_t>(rows * plane) * sizeof(float));
    images = smaller;
  }
  out.images = images;
  out.labels = from_vector<int64_t>(labels, {rows});
  if (opt_.pin_memory) out.labels = empty_pinned({rows}, DType::I64).copy_(out.labels);
  return out;
}

void Batch::to_device(Device d) {
  if (images.defined() && images.device() != d) images = images.to(d, /*non_blocking=*/true);
  if (labels.defined() && labels.device() != d) labels = labels.to(d, /*non_blocking=*/true);
}

void DataLoader::worker_loop(int64_t w) {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || (ctx_ && next_job_ < end_job_ && next_job_ < consumed_ + depth_); });
    if (stop_) return;
    std::shared_ptr<const EpochCtx> ctx = ctx_;
    const int64_t job = next_job_++;
    lk.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    Result r;
    try {
      r.batch = build(*ctx, job, w);
      if (opt_.host_batch_hook) opt_.host_batch_hook(r.batch);
    } catch (...) {
      r.error = std::current_exception();
    }
    const double dt = seconds_since(t0);
    lk.lock();
    WorkerStats& s = stats_[static_cast<size_t>(w)];
    s.busy_s += dt;
    if (!r.error) {
      s.images += r.batch.size();
      s.batches += 1;
    }
    if (ctx->generation == generation_) {
      ready_.emplace(job, std::move(r));
      cv_.notify_all();
    }
  }
}

void DataLoader::report(const Batch& b) {
  skipped_epoch_ += static_cast<int64_t>(b.skipped.size());
  images_epoch_ += b.size();
  if (opt_.quiet) return;
  std::ostream& os = opt_.warn ? *opt_.warn : std::cerr;
  for (const SkippedFile& s : b.skipped) {
    if (warned_epoch_ < opt_.max_warnings) {
      os << "warning: DataLoader: skipped bad image " << s.name << ": " << s.reason;
      if (s.replaced_by >= 0)
        os << " (replaced by " << ds_->sample_name(s.replaced_by) << ")";
      else
        os << " (batch " << b.batch_index << " of epoch " << b.epoch << ")";
      os << "\n";
    } else if (warned_epoch_ == opt_.max_warnings) {
      os << "warning: DataLoader: more bad images in epoch " << b.epoch << " of " << ds_->root()
         << "; no further warnings this epoch (they are still counted)\n";
    }
    ++warned_epoch_;
  }
}

bool DataLoader::next(Batch& out) {
  if (!started_) start(0, 0);
  for (;;) {
    Result r;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (consumed_ >= end_job_) {
        OFA_CHECK(!(images_epoch_ == 0 && skipped_epoch_ > 0), "DataLoader: every image of epoch ", ctx_->epoch,
                  " failed to decode (", skipped_epoch_, " bad files) in ", ds_->root());
        return false;
      }
      const int64_t job = consumed_;
      if (workers_.empty()) {
        std::shared_ptr<const EpochCtx> ctx = ctx_;
        lk.unlock();
        const auto t0 = std::chrono::steady_clock::now();
        try {
          r.batch = build(*ctx, job, -1);
          if (opt_.host_batch_hook) opt_.host_batch_hook(r.batch);
        } catch (...) {
          r.error = std::current_exception();
        }
        const double dt = seconds_since(t0);
        lk.lock();
        stats_[0].busy_s += dt;
        if (!r.error) {
          stats_[0].images += r.batch.size();
          stats_[0].batches += 1;
        }
      } else {
        cv_.wait(lk, [&] { return ready_.count(job) > 0; });
        auto it = ready_.find(job);
        r = std::move(it->second);
        ready_.erase(it);
      }
      // A failed batch counts as consumed: its error is reported once, and the
      // workers never rebuild it (set_epoch or restore to retry).
      ++consumed_;
    }
    cv_.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    report(r.batch);
    if (r.batch.size() == 0) continue;  // Drop policy, every file of the batch bad
    out = std::move(r.batch);
    return true;
  }
}

}  // namespace ofa::data
