// Reporting the results of ofa_eval's data mode (ofa/eval_data.h): the
// Pareto front of top-1 against MACs, a text table, CSV and JSON files, and a
// plot of top-1 against MACs as SVG (with text) or PNG (no text; written with
// zlib, no image library).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ofa/evaluation.h"

namespace ofa {

// One point per result: x = MACs (smaller is better), y = top-1 (larger is
// better). A point is Pareto-optimal when no other point has x <= its x and
// y >= its y with at least one strict; identical points are all optimal.
struct ParetoPoint {
  double x = 0, y = 0;
};
std::vector<bool> pareto_front(const std::vector<ParetoPoint>& points);
std::vector<bool> pareto_front(const std::vector<SubnetResult>& results);

// The table: subnet, resolution, MMACs, Mparams, top-1, top-5, loss, and a
// '*' in the last column for Pareto-optimal rows (`pareto` may be empty).
std::string format_results_table(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto);

// CSV (RFC 4180 quoting, so Python's csv module reads it), header
//   name,ks,e,d,resolution,macs,params,top1,top5,loss,images,pareto
// ks / e / d: the per-block / per-stage lists, space-separated; macs and
// params: counts; accuracies in percent; pareto: 1 or 0. Numbers are written
// with the shortest text that reads back to the same double.
std::string results_csv(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto);
void write_results_csv(const std::string& path, const std::vector<SubnetResult>& results,
                       const std::vector<bool>& pareto);

// {"checkpoint", "dataset", "data", "split", "bn_calib_images", "results": [
//   {"name", "subnet": {"ks", "e", "d", "r"}, "resolution", "macs", "params",
//    "top1", "top5", "loss", "images", "pareto"}]}
struct ReportContext {
  std::string checkpoint, dataset, data_description, split;
  int64_t bn_calib_images = 0;
};
std::string results_json(const ReportContext& ctx, const std::vector<SubnetResult>& results,
                         const std::vector<bool>& pareto);
void write_results_json(const std::string& path, const ReportContext& ctx, const std::vector<SubnetResult>& results,
                        const std::vector<bool>& pareto);

// Top-1 (%) against MMACs, one dot per result, the Pareto-optimal dots
// highlighted and joined in MACs order. SVG: title, axis labels, ticks, a
// legend, a <title> tooltip per dot. PNG: 8-bit RGB, the same geometry
// (axes, grid lines at the ticks, dots, the front's polyline) without text.
std::string plot_svg(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto,
                     const std::string& title);
void write_plot_svg(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto,
                    const std::string& title);
constexpr int kPlotWidth = 720, kPlotHeight = 480;
std::string plot_png(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto);
void write_plot_png(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto);
// By extension (.svg or .png, any case); anything else throws naming both.
void check_plot_path(const std::string& path);
void write_plot(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto,
                const std::string& title);

// An RGB image as a PNG file's bytes (filter 0 on every row, zlib level 9).
std::string encode_png_rgb(int width, int height, const std::vector<uint8_t>& rgb);

}  // namespace ofa
