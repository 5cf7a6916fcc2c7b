// Progressive shrinking, the whole recipe (train_ofa_net.py run task by
// task): the teacher (the full K7-E6-D4 network), then the elastic kernel,
// depth (phases 1, 2) and expand (phases 1, 2) stages, each a RunManager run
// that starts from the previous stage's final.safetensors and distils from
// the teacher stage's result; an expand stage re-organises the middle
// channels before it trains (RunManager::start). A stage whose folder holds
// final.safetensors is done; with resume, a stage with checkpoints continues
// from its newest one, so a killed recipe goes on at the stage and step
// where it stopped.
#pragma once
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "ofa/run_config.h"
#include "ofa/run_manager.h"

namespace ofa {

// Makes the RunManager of a stage: a DistributedRunManager under a launcher
// (distributed/), a RunManager otherwise.
using RunManagerFactory = std::function<std::unique_ptr<RunManager>(const RunConfig&, std::shared_ptr<const RunData>,
                                                                    const RunOptions&)>;

struct RecipeOptions {
  bool resume = false;
  std::ostream* out = nullptr;  // nullptr: std::cout
  bool progress_bar = false;
  RunManagerFactory make_manager;  // empty: a plain RunManager
};

enum class RecipeOutcome { Finished, Stopped };

// Runs the stages of `recipe` in order. Before anything trains, refuses (with
// the folder named) a fresh start over a folder that already holds a run.
// Returns Stopped when a stage was stopped (signal, stop_after_steps);
// throws TrainingDiverged or ofa::Error on failure.
RecipeOutcome run_recipe(const RecipeConfig& recipe, const RecipeOptions& opt);

// The stage's configuration with the chaining filled in: init_path = the
// previous stage's final.safetensors, teacher_path = the teacher stage's
// (unless the stage sets them).
RunConfig chained_stage_config(const RecipeConfig& recipe, size_t index);

}  // namespace ofa
