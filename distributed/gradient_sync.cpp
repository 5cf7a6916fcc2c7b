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
  const double t0 = now_s();
  // The order backward produces gradients: the last parameters' first.
  nn::NamedTensors grads;
  for (auto it = params.rbegin(); it != params.rend(); ++it)
    if (it->second.grad().defined()) grads.emplace_back(it->first, it->second.grad());
  int64_t elements = 0;
  for (const auto& g : grads) elements += g.second.numel();
  if (comm_->world_size() > 1) {
    // Every rank must reduce the same list: compare the signatures (max of h and of -h equal h everywhere).
    const uint64_t sig = tensor_list_signature(grads);
    std::vector<int64_t> v = {static_cast<int64_t>(sig >> 1), -static_cast<int64_t>(sig >> 1),
                              static_cast<int64_t>(grads.size()), -static_cast<int64_t>(grads.size())};
    const int64_t mine = v[0];
    comm_->allreduce_max(v);
    if (v[0] != mine || -v[1] != mine)
      throw CommError(str_cat("rank ", comm_->rank(), ": gradient averaging before allreduce #", comm_->last_seq() + 1,
                              ": the ranks hold gradients for different parameters (this rank: ", grads.size(),
                              " tensors, ", elements, " elements; the ranks hold between ", -v[3], " and ", v[2],
                              " tensors). Every rank must run the same subnets (same seeds) so that the same "
                              "parameters get gradients"));
  }
  std::vector<Tensor> ts;
  ts.reserve(grads.size());
  for (const auto& g : grads) ts.push_back(g.second);
  buckets_.plan(ts, bucket_bytes_, comm_->device());
  // Pack and send bucket by bucket: a bucket is reduced while the next is packed.
  std::vector<WorkPtr> works;
  works.reserve(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    buckets_.pack(b);
    works.push_back(comm_->allreduce_async(buckets_.flat(b), ReduceOp::Average));
    // Let MPI progress the earlier buckets while this thread packs.
    for (size_t k = 0; k + 1 < works.size(); ++k) works[k]->test();
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    works[b]->wait();
    buckets_.unpack(b);
  }
  last_.tensors = static_cast<int64_t>(grads.size());
  last_.elements = elements;
  last_.buckets = static_cast<int64_t>(buckets_.size());
  last_.bytes = 0;
  for (const auto& t : ts) last_.bytes += static_cast<double>(t.numel() * static_cast<int64_t>(dtype_size(t.dtype())));
  last_.seconds = now_s() - t0;
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
