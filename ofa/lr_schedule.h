// The reference's per-batch learning rate (run_config.py /
// progressive_shrinking.train_one_epoch): a linear warmup over the first
// warmup_epochs, then the schedule (cosine or constant) over n_epochs, the
// schedule's epoch counted from the end of the warmup.
#pragma once
#include <cstdint>
#include <string>

#include "ofa/run_config.h"

namespace ofa {

// Warmup step: lr = (epoch * n_batch + batch + 1) / (warmup_epochs * n_batch)
// * (init_lr - warmup_lr) + warmup_lr, so the last warmup batch reaches init_lr.
double warmup_learning_rate(double init_lr, double warmup_lr, int64_t warmup_epochs, int64_t epoch,
                            int64_t batch, int64_t n_batch);

// Schedule step, epoch counted from the end of the warmup. "cosine":
// 0.5 * init_lr * (1 + cos(pi * (epoch * n_batch + batch) / (n_epochs * n_batch)));
// "none": init_lr. Throws for another type.
double scheduled_learning_rate(double init_lr, int64_t n_epochs, int64_t epoch, int64_t batch,
                               int64_t n_batch, const std::string& lr_schedule_type);

// The lr of batch `batch` (0-based, of n_batch) in training epoch `epoch`
// (0-based, counting the warmup epochs: 0 .. warmup_epochs + n_epochs - 1), as
// the reference sets it before that batch's forward pass. init_lr =
// base_lr * world_size; warmup starts from effective_warmup_lr(cfg) (not
// scaled by the world size, as the reference).
double learning_rate(const RunConfig& cfg, int64_t epoch, int64_t batch, int64_t n_batch, int64_t world_size);

}  // namespace ofa
