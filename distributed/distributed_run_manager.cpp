#include "distributed/distributed_run_manager.h"

#include <iomanip>
#include <iostream>

namespace ofa {

namespace {
const RunConfig& checked(const RunConfig& cfg, const dist::Communicator& comm) {
  if (comm.world_size() > 1) {
    OFA_CHECK(!cfg.fp16_allreduce, "key 'fp16_allreduce': compressing gradients to fp16 for the allreduce is not "
              "implemented; set fp16_allreduce: false (gradients are averaged in float32)");
    OFA_CHECK(!cfg.independent_distributed_sampling, "key 'independent_distributed_sampling': ranks drawing "
              "their subnets independently is not implemented (every rank draws the same subnets); set it to false");
    OFA_CHECK(!cfg.not_sync_distributed_image_size, "key 'not_sync_distributed_image_size': ranks drawing their "
              "batch resolution independently is not implemented (every rank uses the same one); set it to false");
  }
  return cfg;
}
}  // namespace

DistributedRunManager::DistributedRunManager(RunConfig cfg, std::shared_ptr<const RunData> data, RunOptions opt,
                                             std::shared_ptr<dist::Communicator> comm)
    : RunManager(checked(cfg, *comm), std::move(data), opt),
      comm_(std::move(comm)),
      sync_(comm_, config().allreduce_bucket_mb),
      out_(opt.out) {
  comm_->set_timeout_s(config().comm_timeout_s);
  const std::string dev = config().device;
  OFA_CHECK((dev == "cpu") == comm_->device().is_cpu(), "DistributedRunManager: key 'device' is '", dev,
            "' but the communicator (", comm_->backend(), ") works on ", comm_->device().str(), " tensors");
}

void DistributedRunManager::last_backward(const Tensor& loss) {
  if (world_size() == 1 || !config().overlap_grad_sync) {
    loss.backward();
    return;
  }
  sync_.arm(net().named_parameters(), loss);
  LeafGradHookGuard hook(sync_.leaf_hook());
  loss.backward();
}

void DistributedRunManager::sync_gradients() {
  if (world_size() == 1) return;
  if (sync_.armed()) sync_.finish();
  else sync_.average(net().named_parameters());
  if (!described_ && is_root()) {
    const auto& s = sync_.last();
    std::ostream& o = out_ ? *out_ : std::cout;
    o << "distributed: " << world_size() << " ranks (" << comm_->backend() << "), gradients of " << s.tensors
      << " tensors (" << std::fixed << std::setprecision(1) << s.bytes / 1048576.0 << " MB) averaged in " << s.buckets
      << " bucket" << (s.buckets == 1 ? "" : "s") << " of <= " << config().allreduce_bucket_mb << " MB ("
      << s.buckets_in_backward << " launched during the last backward pass), " << std::setprecision(3) << s.seconds
      << " s, " << s.finish_seconds << " s of it after backward\n"
      << std::defaultfloat << std::flush;
    described_ = true;
  }
}

void DistributedRunManager::allreduce_sum(std::vector<double>& values) { comm_->allreduce_sum(values); }

bool DistributedRunManager::any_rank(bool local) {
  // The signal number travels too: every rank then reports (and exits with) it.
  std::vector<int64_t> v = {local ? 1 : 0, stop_signal()};
  comm_->allreduce_max(v);
  if (v[1] != 0 && stop_signal() == 0) request_stop(static_cast<int>(v[1]));
  return v[0] != 0;
}

void DistributedRunManager::broadcast_state() {
  std::vector<Tensor> ts;
  for (const auto& kv : net().named_parameters()) ts.push_back(kv.second.detach());
  for (const auto& kv : net().named_buffers()) ts.push_back(kv.second.detach());
  dist::broadcast_tensors(*comm_, ts, 0, sync_.bucket_bytes());
}

void DistributedRunManager::barrier() { comm_->barrier(); }

RunManagerFactory distributed_manager_factory(std::shared_ptr<dist::Communicator> comm) {
  return [comm](const RunConfig& cfg, std::shared_ptr<const RunData> data,
                const RunOptions& opt) -> std::unique_ptr<RunManager> {
    return std::make_unique<DistributedRunManager>(cfg, std::move(data), opt, comm);
  };
}

}  // namespace ofa
