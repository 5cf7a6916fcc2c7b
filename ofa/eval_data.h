// ofa_eval's data mode: many subnets of a supernet checkpoint evaluated on a
// data set (Fashion-MNIST or an ImageNet-style folder) as the reference's
// validate() does: each subnet made active, its BN statistics recomputed on
// bn_calib_images training images (training transforms at its resolution),
// then top-1 / top-5 / loss with the evaluation transforms. The subnets: the
// reference's validation grid, a JSON list, or random samples. Results go to
// a table (stdout), and optionally CSV, JSON and a plot (ofa/eval_report.h).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "ofa/eval_tensors.h"
#include "ofa/evaluation.h"
#include "ofa/run_config.h"

namespace ofa {

// The run configuration of a data-mode evaluation: defaults, then --config
// (a run file or a recipe: its keys outside `stages`), then every --set, then
// the flags as overrides (--data dataset, --data-path data_path,
// --calib-images bn_calib_images, --calib-batch-size bn_calib_batch_size,
// --batch-size base_batch_size, --workers n_worker), and valid_size = 0 for
// --split test (the hold-out split is not read then).
RunConfig eval_data_config(const nn::EvalOptions& o);

// --subnets: a JSON list of the reference's subnet objects, or one object;
// each may carry "name". An entry without "r" is evaluated at every
// resolution of `resolutions`. `where` names the file in errors.
std::vector<GridEntry> subnet_list_entries(const std::string& json_text, const std::string& where,
                                           const std::vector<int64_t>& resolutions);
// --random N: entry I is net.sample_active_subnet with PyRandom(seed + I),
// named "seed <seed + I>", at every resolution.
std::vector<GridEntry> random_entries(nn::OFAMobileNetV3& net, int64_t n, int64_t seed,
                                      const std::vector<int64_t>& resolutions);

// "name" when the name already says the resolution (grid names "R32-..."),
// else "name @R".
std::string result_label(const std::string& name, int64_t resolution);

// Runs the data mode: the table and the closing lines to `out`, progress to
// `err` (one line per subnet; with live_progress also a line rewritten per
// batch, for a terminal). Throws ofa::Error naming the option or key to fix.
std::vector<SubnetResult> run_eval_data(const nn::EvalOptions& o, std::ostream& out, std::ostream& err,
                                        bool live_progress);

}  // namespace ofa
