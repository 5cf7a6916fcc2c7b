// Bucketed collectives over many tensors: the gradient averaging of a data-
// parallel step and the broadcast of a model's state.
//
// Buckets: the tensors, in the given order, are packed into flat buffers of
// one dtype and at most bucket_bytes each (a tensor larger than that is a
// bucket of its own; a change of dtype starts a new bucket). Each bucket is
// one collective: fewer, larger messages than one per tensor (latency), yet
// several of them, so that the reduction of one bucket runs while the next is
// packed (and, on GPUs, while backward still produces the next gradients).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "nn/module.h"

namespace ofa::dist {

// The bucket layout of a list of tensors and its flat buffers.
class TensorBuckets {
 public:
  TensorBuckets() = default;
  // Plans buckets over `tensors` (kept by reference: the same storages);
  // flat buffers are allocated on `device`.
  void plan(const std::vector<Tensor>& tensors, size_t bucket_bytes, Device device);
  size_t size() const { return buckets_.size(); }
  const Tensor& flat(size_t b) const { return buckets_[b].flat; }
  size_t tensors_in(size_t b) const { return buckets_[b].entries.size(); }
  void pack(size_t b);    // tensors -> flat buffer
  void unpack(size_t b);  // flat buffer -> tensors

 private:
  struct Entry {
    Tensor t;
    int64_t offset = 0;
  };
  struct Bucket {
    Tensor flat;
    std::vector<Entry> entries;
  };
  std::vector<Bucket> buckets_;
};

// Averages gradients over the ranks of a communicator.
class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> comm, double bucket_mb);

  // Every parameter of `params` that has a .grad() gets the average of the
  // ranks' gradients. Buckets follow the reverse of `params` order (the order
  // backward produces gradients: the last layers' first). Every rank must
  // hold gradients for the same parameters (same names, sizes, dtypes):
  // checked with one small collective, a mismatch is a CommError naming this
  // rank's set.
  void average(const nn::NamedTensors& params);

  struct Stats {
    int64_t tensors = 0, elements = 0, buckets = 0;
    double bytes = 0, seconds = 0;
  };
  const Stats& last() const { return last_; }
  size_t bucket_bytes() const { return bucket_bytes_; }

 private:
  std::shared_ptr<Communicator> comm_;
  size_t bucket_bytes_;
  TensorBuckets buckets_;
  Stats last_;
};

// Every tensor becomes root's (bucketed broadcasts).
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int64_t root, size_t bucket_bytes);

// Order-sensitive 64-bit FNV-1a over names, element counts and dtypes.
uint64_t tensor_list_signature(const nn::NamedTensors& tensors);

}  // namespace ofa::dist
