#include "distributed/gradient_sync.h"

#include <chrono>
#include <cmath>

namespace ofa::dist {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void TensorBuckets::plan(const std::vector<Tensor>& tensors, size_t bucket_bytes, Device device) {
  // Keep the flat buffers of an unchanged layout (no allocation per step).
  std::vector<Bucket> old = std::move(buckets_);
  buckets_.clear();
  bucket_of_.clear();
  for (const Tensor& t : tensors) {
    OFA_CHECK(t.defined() && t.numel() > 0, "TensorBuckets: an undefined or empty tensor");
    const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    bool fresh = buckets_.empty();
    if (!fresh) {
      const Bucket& b = buckets_.back();
      const Entry& last = b.entries.back();
      const size_t used = static_cast<size_t>(last.offset + last.t.numel()) * dtype_size(last.t.dtype());
      fresh = last.t.dtype() != t.dtype() || used + bytes > bucket_bytes;
    }
    if (fresh) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    const int64_t off = b.entries.empty() ? 0 : b.entries.back().offset + b.entries.back().t.numel();
    b.entries.push_back({t, off});
    bucket_of_.push_back(buckets_.size() - 1);
  }
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    const int64_t n = b.entries.back().offset + b.entries.back().t.numel();
    const DType dt = b.entries.back().t.dtype();
    if (i < old.size() && old[i].flat.defined() && old[i].flat.numel() == n && old[i].flat.dtype() == dt &&
        old[i].flat.device() == device)
      b.flat = old[i].flat;
    else
      b.flat = empty({n}, dt, device);
  }
}

void TensorBuckets::pack(size_t i) {
  Bucket& b = buckets_.at(i);
  for (const Entry& e : b.entries) b.flat.narrow(0, e.offset, e.t.numel()).view(e.t.shape()).copy_(e.t);
}

void TensorBuckets::unpack(size_t i) {
  Bucket& b = buckets_.at(i);
  for (const Entry& e : b.entries) {
    Tensor dst = e.t;
    dst.copy_(b.flat.narrow(0, e.offset, e.t.numel()).view(e.t.shape()));
  }
}

void TensorBuckets::pack_grads(size_t i) {
  Bucket& b = buckets_.at(i);
  for (const Entry& e : b.entries) {
    Tensor slot = b.flat.narrow(0, e.offset, e.t.numel());
    const Tensor g = e.t.grad();
    if (g.defined()) slot.view(e.t.shape()).copy_(g);
    else slot.zero_();
  }
}

void TensorBuckets::unpack_grads(size_t i) {
  Bucket& b = buckets_.at(i);
  for (const Entry& e : b.entries) {
    Tensor g = e.t.grad();
    if (g.defined()) g.copy_(b.flat.narrow(0, e.offset, e.t.numel()).view(e.t.shape()));
  }
}

uint64_t tensor_list_signature(const nn::NamedTensors& tensors) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= c[i];
      h *= 1099511628211ULL;
    }
  };
  for (const auto& [name, t] : tensors) {
    mix(name.data(), name.size());
    const int64_t n = t.numel();
    const auto d = static_cast<uint8_t>(t.dtype());
    mix(&n, sizeof n);
    mix(&d, sizeof d);
  }
  return h;
}

GradientSync::GradientSync(std::shared_ptr<Communicator> comm, double bucket_mb) : comm_(std::move(comm)) {
  OFA_CHECK(comm_ != nullptr, "GradientSync: no communicator");
  OFA_CHECK(std::isfinite(bucket_mb) && bucket_mb > 0, "GradientSync: the bucket size must be > 0 MB (got ",
            bucket_mb, ")");
  bucket_bytes_ = static_cast<size_t>(bucket_mb * 1024.0 * 1024.0);
  if (bucket_bytes_ < 64) bucket_bytes_ = 64;
}

void GradientSync::average(const nn::NamedTensors& params) {
  arm(params, Tensor());
  finish();
}

void GradientSync::arm(const nn::NamedTensors& params, const Tensor& last_loss) {
  OFA_CHECK(!armed_, "GradientSync::arm: the previous overlapped averaging was never finished (call finish() after "
            "the backward pass, before arming the next step)");
  t0_ = now_s();
  position_.clear();
  // What the last pass reaches (it will write their .grad()s).
  std::unordered_map<const TensorImpl*, bool> reached;
  if (last_loss.defined())
    for (const Tensor& leaf : reachable_leaves(last_loss)) reached[leaf.impl()] = true;
  // The order backward produces gradients: the last parameters' first.
  nn::NamedTensors list;
  std::vector<Tensor> ts;
  std::vector<char> final_now;
  int64_t elements = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const Tensor& p = it->second;
    const bool will_get = reached.count(p.impl()) != 0;
    if (!p.grad().defined() && !will_get) continue;
    list.emplace_back(it->first, p);
    ts.push_back(p);
    final_now.push_back(will_get ? 0 : 1);
    elements += p.numel();
  }
  if (comm_->world_size() > 1) {
    // Every rank must reduce the same list: compare the signatures (max of h and of -h equal h everywhere).
    const uint64_t sig = tensor_list_signature(list);
    std::vector<int64_t> v = {static_cast<int64_t>(sig >> 1), -static_cast<int64_t>(sig >> 1),
                              static_cast<int64_t>(list.size()), -static_cast<int64_t>(list.size())};
    const int64_t mine = v[0];
    comm_->allreduce_max(v);
    if (v[0] != mine || -v[1] != mine)
      throw CommError(str_cat("rank ", comm_->rank(), ": gradient averaging before allreduce #", comm_->last_seq() + 1,
                              ": the ranks hold gradients for different parameters (this rank: ", list.size(),
                              " tensors, ", elements, " elements; the ranks hold between ", -v[3], " and ", v[2],
                              " tensors). Every rank must run the same subnets (same seeds) so that the same "
                              "parameters get gradients"));
  }
  buckets_.plan(ts, bucket_bytes_, comm_->device());
  ready_.assign(ts.size(), 0);
  missing_.assign(buckets_.size(), 0);
  for (size_t k = 0; k < ts.size(); ++k) {
    position_[ts[k].impl()] = k;
    missing_[buckets_.bucket_of(k)] += 1;
  }
  next_launch_ = oldest_in_flight_ = 0;
  works_.clear();
  works_.reserve(buckets_.size());
  last_ = Stats{};
  last_.tensors = static_cast<int64_t>(ts.size());
  last_.elements = elements;
  last_.buckets = static_cast<int64_t>(buckets_.size());
  for (const auto& t : ts) last_.bytes += static_cast<double>(t.numel() * static_cast<int64_t>(dtype_size(t.dtype())));
  armed_ = true;
  for (size_t k = 0; k < ts.size(); ++k)
    if (final_now[k]) mark_ready(k);
  launch_ready(last_.buckets_at_arm);
}

LeafGradHook GradientSync::leaf_hook() {
  return [this](const Tensor& leaf) { leaf_ready(leaf); };
}

void GradientSync::leaf_ready(const Tensor& leaf) {
  if (!armed_) return;
  const auto it = position_.find(leaf.impl());
  if (it == position_.end()) return;  // not one of the averaged parameters
  mark_ready(it->second);
  launch_ready(last_.buckets_in_backward);
}

void GradientSync::mark_ready(size_t k) {
  if (ready_[k]) return;
  ready_[k] = 1;
  missing_[buckets_.bucket_of(k)] -= 1;
}

void GradientSync::launch_ready(int64_t& launched) {
  // Plan order only: every rank then issues the same allreduces in the same order.
  while (next_launch_ < buckets_.size() && missing_[next_launch_] == 0) {
    buckets_.pack_grads(next_launch_);
    works_.push_back(comm_->allreduce_async(buckets_.flat(next_launch_), ReduceOp::Average));
    ++next_launch_;
    ++launched;
  }
  progress();
}

void GradientSync::progress() {
  while (oldest_in_flight_ < works_.size() && works_[oldest_in_flight_]->test()) ++oldest_in_flight_;
}

void GradientSync::finish() {
  OFA_CHECK(armed_, "GradientSync::finish: nothing is armed (arm() before the last backward pass)");
  const double t1 = now_s();
  // Backward is over: whatever it did not report (no gradient reached it) is final too.
  for (size_t k = 0; k < ready_.size(); ++k) mark_ready(k);
  launch_ready(last_.buckets_at_finish);
  OFA_CHECK(next_launch_ == buckets_.size(), "GradientSync::finish: only ", next_launch_, " of ", buckets_.size(),
            " buckets could be launched");
  for (size_t b = 0; b < buckets_.size(); ++b) {
    works_[b]->wait();
    buckets_.unpack_grads(b);
  }
  works_.clear();
  position_.clear();
  armed_ = false;
  const double t2 = now_s();
  last_.finish_seconds = t2 - t1;
  last_.seconds = t2 - t0_;
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int64_t root, size_t bucket_bytes) {
  if (comm.world_size() == 1 || tensors.empty()) return;
  TensorBuckets buckets;
  buckets.plan(tensors, bucket_bytes, comm.device());
  std::vector<WorkPtr> works;
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (comm.rank() == root) buckets.pack(b);
    works.push_back(comm.broadcast_async(buckets.flat(b), root));
  }
  for (size_t b = 0; b < buckets.size(); ++b) {
    works[b]->wait();
    if (comm.rank() != root) buckets.unpack(b);
  }
}

}  // namespace ofa::dist
