#include "ofa/lr_schedule.h"

#include <cmath>

#include "engine/common.h"

namespace ofa {

namespace {
void check_position(const char* fn, int64_t epoch, int64_t batch, int64_t n_batch) {
  OFA_CHECK(n_batch >= 1, fn, ": n_batch must be >= 1 (got ", n_batch, "); an epoch needs at least one batch");
  OFA_CHECK(epoch >= 0, fn, ": epoch must be >= 0 (got ", epoch, ")");
  OFA_CHECK(batch >= 0 && batch < n_batch, fn, ": batch must be in [0, n_batch) = [0, ", n_batch, ") (got ", batch,
            ")");
}
}  // namespace

double warmup_learning_rate(double init_lr, double warmup_lr, int64_t warmup_epochs, int64_t epoch,
                            int64_t batch, int64_t n_batch) {
  check_position("warmup_learning_rate", epoch, batch, n_batch);
  OFA_CHECK(warmup_epochs >= 1, "warmup_learning_rate: warmup_epochs must be >= 1 (got ", warmup_epochs, ")");
  OFA_CHECK(epoch < warmup_epochs, "warmup_learning_rate: epoch ", epoch, " is past the warmup (warmup_epochs = ",
            warmup_epochs, ")");
  // Same operation order as the reference, so the double result is identical.
  const double t_total = static_cast<double>(warmup_epochs * n_batch);
  const double t_cur = static_cast<double>(epoch * n_batch + batch + 1);
  return t_cur / t_total * (init_lr - warmup_lr) + warmup_lr;
}

double scheduled_learning_rate(double init_lr, int64_t n_epochs, int64_t epoch, int64_t batch,
                               int64_t n_batch, const std::string& lr_schedule_type) {
  check_position("scheduled_learning_rate", epoch, batch, n_batch);
  OFA_CHECK(n_epochs >= 1, "scheduled_learning_rate: n_epochs must be >= 1 (got ", n_epochs, ")");
  if (lr_schedule_type == "cosine") {
    const double t_total = static_cast<double>(n_epochs * n_batch);
    const double t_cur = static_cast<double>(epoch * n_batch + batch);
    return 0.5 * init_lr * (1 + std::cos(M_PI * t_cur / t_total));
  }
  if (lr_schedule_type == "none" || lr_schedule_type == "None") return init_lr;
  OFA_CHECK(false, "scheduled_learning_rate: unknown lr_schedule_type '", lr_schedule_type,
            "'; valid: cosine | none");
  return 0.0;
}

double learning_rate(const RunConfig& cfg, int64_t epoch, int64_t batch, int64_t n_batch, int64_t world_size) {
  const double lr0 = init_lr(cfg, world_size);
  if (epoch < cfg.warmup_epochs)
    return warmup_learning_rate(lr0, effective_warmup_lr(cfg), cfg.warmup_epochs, epoch, batch, n_batch);
  OFA_CHECK(epoch < cfg.warmup_epochs + cfg.n_epochs, "learning_rate: epoch ", epoch,
            " is past the run (warmup_epochs + n_epochs = ", cfg.warmup_epochs + cfg.n_epochs, ")");
  return scheduled_learning_rate(lr0, cfg.n_epochs, epoch - cfg.warmup_epochs, batch, n_batch, cfg.lr_schedule_type);
}

}  // namespace ofa
