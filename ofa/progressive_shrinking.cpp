#include "ofa/progressive_shrinking.h"


#include <chrono>
#include <iostream>

#include "engine/file_io.h"
#include "engine/threads.h"

namespace ofa {


RunConfig chained_stage_config(const RecipeConfig& recipe, size_t index) {
  OFA_CHECK(index < recipe.stages.size(), "chained_stage_config: no stage ", index);
  RunConfig cfg = recipe.stages[index].cfg;
  if (cfg.init_path.empty() && index > 0) cfg.init_path = recipe.stages[index - 1].cfg.path + "/final.safetensors";
  if (cfg.teacher_path.empty() && cfg.task != "teacher" && cfg.kd_ratio > 0)
    for (const StageConfig& s : recipe.stages)
      if (s.cfg.task == "teacher") cfg.teacher_path = s.cfg.path + "/final.safetensors";
  return cfg;
}

RecipeOutcome run_recipe(const RecipeConfig& recipe, const RecipeOptions& opt) {
  std::ostream& out = opt.out ? *opt.out : std::cout;
  OFA_CHECK(!recipe.stages.empty(), "the recipe has no stage");
  if (!opt.resume)
    for (const StageConfig& s : recipe.stages)
      OFA_CHECK(!path_exists(s.cfg.path + "/final.safetensors") && !path_exists(s.cfg.path + "/checkpoint"), "stage ", s.id,
                ": the folder '", s.cfg.path,
                "' already holds a run; continue the recipe with --resume, or choose another path (--path DIR or "
                "key 'path')");
  std::shared_ptr<const RunData> data;
  RunConfig data_cfg;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t k = 0; k < recipe.stages.size(); ++k) {
    const StageConfig& st = recipe.stages[k];
    const RunConfig cfg = chained_stage_config(recipe, k);
    set_compute_threads(cfg.threads);
    if (path_exists(cfg.path + "/final.safetensors")) {
      out << "[" << st.id << "] already finished (" << cfg.path << "/final.safetensors)\n";
      continue;
    }
    if (!data || data_cfg.dataset != cfg.dataset || data_cfg.data_path != cfg.data_path ||
        data_cfg.valid_size != cfg.valid_size) {
      data = std::make_shared<const RunData>(open_run_data(cfg));
      data_cfg = cfg;
      out << "data: " << data->description << "\n";
    }
    out << "[" << st.id << "] stage " << k + 1 << "/" << recipe.stages.size() << ": task " << cfg.task
        << (cfg.task == "depth" || cfg.task == "expand" ? " phase " + std::to_string(cfg.phase) : std::string())
        << ", " << cfg.warmup_epochs + cfg.n_epochs << " epochs, folder " << cfg.path << "\n"
        << std::flush;
    RunOptions ro;
    ro.out = &out;
    ro.progress_bar = opt.progress_bar;
    ro.stage_id = st.id;
    std::unique_ptr<RunManager> rm =
        opt.make_manager ? opt.make_manager(cfg, data, ro) : std::make_unique<RunManager>(cfg, data, ro);
    const bool has_checkpoints = !list_checkpoints(rm->checkpoint_dir()).empty() || !cfg.resume_path.empty();
    rm->start(opt.resume && has_checkpoints);
    if (rm->train() == StageOutcome::Stopped) return RecipeOutcome::Stopped;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << "recipe finished: " << recipe.stages.size() << " stage" << (recipe.stages.size() == 1 ? "" : "s")
      << " (this invocation " << static_cast<int64_t>(secs) << " s); result "
      << recipe.stages.back().cfg.path << "/final.safetensors\n";
  return RecipeOutcome::Finished;
}

}  // namespace ofa
