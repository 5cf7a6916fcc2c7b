// DistributedRunManager: the RunManager of one rank of a data-parallel run.
//
// What the RunManager does by itself with world_size() / rank(): each rank
// trains on its shard of the data (DistributedSampler), init_lr = base_lr *
// world size, every rank draws the same subnets and resolution at every step
// (seeds from the step), only rank 0 writes logs and checkpoints, every rank
// resumes from the same checkpoint, the step's loss and accuracy meters and
// the validation metrics and BN-recalibration statistics are summed over the
// ranks (allreduce_sum), and a stop request on any rank stops every rank
// after the same step (any_rank).
//
// What this class adds (the hooks):
//   broadcast_state  rank 0's parameters and buffers to every rank, at a fresh
//                    start and after a resume;
//   last_backward,   once per optimizer step: every gradient averaged over
//   sync_gradients   the ranks in buckets of allreduce_bucket_mb
//                    (GradientSync). With overlap_grad_sync (the default)
//                    last_backward arms the averaging before the backward
//                    pass of the step's last subnet and a leaf-gradient hook
//                    launches each bucket's allreduce as soon as that pass
//                    has written the bucket's gradients (buckets the pass
//                    does not touch go at once); sync_gradients launches the
//                    rest, waits and unpacks. Without it sync_gradients does
//                    it all after backward. Same result either way.
//   allreduce_sum / any_rank  through the communicator; a stop signal on one
//                    rank is recorded on every rank (stop_signal()), so that
//                    every rank exits with the same status;
//   barrier          before rank 0 writes a fresh run's folder and after it
//                    wrote a stage's final or stop checkpoint.
//
// Keys: allreduce_bucket_mb, overlap_grad_sync, comm_timeout_s (the
// communicator's watchdog).
// Refused (not implemented): fp16_allreduce, independent_distributed_sampling
// and not_sync_distributed_image_size with more than one rank.
#pragma once
#include <iosfwd>
#include <memory>

#include "distributed/communicator.h"
#include "distributed/gradient_sync.h"
#include "ofa/progressive_shrinking.h"
#include "ofa/run_manager.h"

namespace ofa {

class DistributedRunManager : public RunManager {
 public:
  DistributedRunManager(RunConfig cfg, std::shared_ptr<const RunData> data, RunOptions opt,
                        std::shared_ptr<dist::Communicator> comm);

  int64_t world_size() const override { return comm_->world_size(); }
  int64_t rank() const override { return comm_->rank(); }

  dist::Communicator& communicator() { return *comm_; }
  // The last gradient averaging (tensors, buckets, bytes, seconds).
  const dist::GradientSync::Stats& last_sync() const { return sync_.last(); }

  // Public for tests: the hooks as the RunManager calls them.
  void last_backward_now(const Tensor& loss) { last_backward(loss); }
  void sync_gradients_now() { sync_gradients(); }
  void broadcast_state_now() { broadcast_state(); }

 protected:
  void last_backward(const Tensor& loss) override;
  void sync_gradients() override;
  void allreduce_sum(std::vector<double>& values) override;
  bool any_rank(bool local) override;
  void broadcast_state() override;
  void barrier() override;

 private:
  std::shared_ptr<dist::Communicator> comm_;
  dist::GradientSync sync_;
  std::ostream* out_ = nullptr;
  bool described_ = false;
};

// The factory run_recipe takes (RecipeOptions::make_manager): a
// DistributedRunManager over `comm` for every stage.
RunManagerFactory distributed_manager_factory(std::shared_ptr<dist::Communicator> comm);

}  // namespace ofa
