// Bucketed collectives over many tensors: the gradient averaging of a data-
// parallel step and the broadcast of a model's state.
//
// Buckets: the tensors, in the given order, are packed into flat buffers of
// one dtype and at most bucket_bytes each (a tensor larger than that is a
// bucket of its own; a change of dtype starts a new bucket). Each bucket is
// one collective: fewer, larger messages than one per tensor (latency), yet
// several of them, so that the reduction of one bucket runs while the next is
// packed and, in the overlapped form, while backward still produces the next
// gradients (a LeafGradHook reports each parameter's final gradient).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <unordered_map>

#include "distributed/communicator.h"
#include "engine/autograd.h"
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
  // The bucket of the k-th tensor given to plan().
  size_t bucket_of(size_t k) const { return bucket_of_.at(k); }
  void pack(size_t b);    // tensors -> flat buffer
  void unpack(size_t b);  // flat buffer -> tensors
  // The same with the tensors' .grad() (the planned tensors are parameters):
  // a parameter without a grad packs zeros and is left without one.
  void pack_grads(size_t b);
  void unpack_grads(size_t b);

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
  std::vector<size_t> bucket_of_;
};

// Averages gradients over the ranks of a communicator, after backward
// (average) or overlapped with the step's last backward pass (arm, the leaf
// hook, finish). Either way the buckets follow the reverse of `params` order
// (the order backward produces gradients: the last layers' first) and are
// launched in that order, so every rank issues the same collectives in the
// same order whatever order its hook reports gradients in.
class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> comm, double bucket_mb);

  // Every parameter of `params` that has a .grad() gets the average of the
  // ranks' gradients. Every rank must hold gradients for the same parameters
  // (same names, sizes, dtypes): checked with one small collective, a
  // mismatch is a CommError naming this rank's set.
  void average(const nn::NamedTensors& params);

  // The overlapped form, around the last backward pass of an optimizer step:
  //   sync.arm(params, loss);
  //   { LeafGradHookGuard hook(sync.leaf_hook()); loss.backward(); }
  //   sync.finish();
  // arm: the parameters averaged are those holding a .grad() now (from the
  // step's earlier passes) and those `last_loss`'s graph reaches; the same
  // list on every rank is checked as in average(); buckets are planned over
  // it and the ones whose parameters the last pass does not reach (final
  // already) are launched. The hook marks a parameter final and launches, in
  // plan order, every bucket that is then complete. finish launches the rest
  // (a reached parameter that got no gradient packs zeros and keeps none),
  // waits for every bucket and writes the averages into the .grad()s. The
  // result is the one average() gives after the same backward passes.
  void arm(const nn::NamedTensors& params, const Tensor& last_loss);
  LeafGradHook leaf_hook();
  void finish();
  bool armed() const { return armed_; }

  struct Stats {
    int64_t tensors = 0, elements = 0, buckets = 0;
    // Where the buckets were launched: by arm (nothing in them left for the
    // last pass), from the leaf hook (while backward was still running) or
    // by finish. average() launches every bucket at arm.
    int64_t buckets_at_arm = 0, buckets_in_backward = 0, buckets_at_finish = 0;
    // seconds: from arm (or average's start) to the end; finish_seconds: the
    // part after backward (what the step waits for).
    double bytes = 0, seconds = 0, finish_seconds = 0;
  };
  const Stats& last() const { return last_; }
  size_t bucket_bytes() const { return bucket_bytes_; }

 private:
  void leaf_ready(const Tensor& leaf);
  void mark_ready(size_t k);
  // Launches, in plan order, the buckets whose tensors are all final.
  void launch_ready(int64_t& launched);
  // Lets the communicator progress the buckets in flight (MPI progresses
  // only inside its calls).
  void progress();

  std::shared_ptr<Communicator> comm_;
  size_t bucket_bytes_;
  TensorBuckets buckets_;
  Stats last_;
  // The armed state: plan position of each parameter (by its TensorImpl),
  // which are final, how many tensors each bucket still waits for, the next
  // bucket to launch and the buckets in flight.
  bool armed_ = false;
  double t0_ = 0;
  std::unordered_map<const TensorImpl*, size_t> position_;
  std::vector<char> ready_;
  std::vector<int64_t> missing_;
  size_t next_launch_ = 0, oldest_in_flight_ = 0;
  std::vector<WorkPtr> works_;
};

// Every tensor becomes root's (bucketed broadcasts).
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int64_t root, size_t bucket_bytes);

// Order-sensitive 64-bit FNV-1a over names, element counts and dtypes.
uint64_t tensor_list_signature(const nn::NamedTensors& tensors);

}  // namespace ofa::dist
