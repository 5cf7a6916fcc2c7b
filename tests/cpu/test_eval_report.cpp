// ofa_eval's data mode: the report helpers (ofa/eval_report.h: Pareto front,
// table, CSV, JSON, SVG and PNG plots), the subnet selections and option
// parsing (ofa/eval_data.h, ofa/eval_tensors.h), and end-to-end runs on a tiny
// Fashion-MNIST-format IDX set written into a temporary folder.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/export_jpeg.h"
#include "nn/checkpoint.h"
#include "ofa/eval_data.h"
#include "ofa/eval_report.h"
#include "ofa/eval_tensors.h"
#include "tests/support/test_util.h"

namespace ofa::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------- helpers

SubnetResult make_result(const std::string& name, int64_t r, int64_t macs, double top1, double top5 = 90,
                         double loss = 1.25) {
  SubnetResult s;
  s.name = name;
  s.resolution = r;
  s.setting.ks = {3, 5, 7};
  s.setting.e = {3, 4.5, 6};
  s.setting.d = {2, 4};
  s.info.macs = macs;
  s.info.params = 2000000 + macs / 10;
  s.metrics.top1 = top1;
  s.metrics.top5 = top5;
  s.metrics.loss = loss;
  s.metrics.images = 32;
  return s;
}

// Five results: two on the front of (MACs, top-1), one tie with a front point.
std::vector<SubnetResult> sample_results() {
  return {make_result("R160-D2-E3-K3", 160, 50000000, 60.5), make_result("R160-D4-E6-K7", 160, 200000000, 75.25),
          make_result("big but worse", 224, 300000000, 70.0), make_result("weird, \"name\"", 128, 60000000, 55.0, 80.0, 0.1),
          make_result("R224-D4-E6-K7", 224, 200000000, 75.25)};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count_of(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + part.size())) ++n;
  return n;
}

// RFC 4180 records, as Python's csv.reader reads them.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

uint32_t be32_at(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

struct PngChunk {
  std::string type, data;
};
// Splits a PNG into chunks, checking the signature and every CRC.
std::vector<PngChunk> png_chunks(const std::string& png) {
  std::vector<PngChunk> out;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = be32_at(png, at);
    EXPECT_LE(at + 12 + len, png.size());
    PngChunk c{png.substr(at + 4, 4), png.substr(at + 8, len)};
    const std::string body = png.substr(at + 4, 4 + len);
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size())));
    EXPECT_EQ(be32_at(png, at + 8 + len), crc) << "CRC of chunk " << c.type;
    out.push_back(c);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size()) << "trailing bytes after the last chunk";
  return out;
}

nn::EvalOptions args(const std::vector<std::string>& a) { return nn::parse_eval_args(a); }

// ---------------------------------------------------------------- Pareto front

TEST(EvalReport, ParetoFrontOfHandMadePointsWithTies) {
  const std::vector<ParetoPoint> p = {
      {10, 50},  // A: optimal
      {20, 60},  // B: optimal
      {20, 55},  // C: same MACs as B, worse
      {15, 50},  // D: same top-1 as A, more MACs
      {10, 50},  // E: identical to A: neither dominates the other
      {30, 60},  // F: same top-1 as B, more MACs
      {5, 40},   // G: cheapest
      {40, 70},  // H: best
      {35, 65},  // I: between B and H, optimal
      {36, 64},  // J: dominated by I
  };
  const std::vector<bool> expect = {true, true, false, false, true, false, true, true, true, false};
  EXPECT_EQ(pareto_front(p), expect);
  EXPECT_TRUE(pareto_front(std::vector<ParetoPoint>{}).empty());
  EXPECT_EQ(pareto_front(std::vector<ParetoPoint>{{1, 1}}), std::vector<bool>{true});
  // Results use (MACs, top-1).
  EXPECT_EQ(pareto_front(sample_results()), (std::vector<bool>{true, true, false, false, true}));
}

// ---------------------------------------------------------------- table / CSV / JSON

TEST(EvalReport, TableHasAHeaderAndOneRowPerResult) {
  const auto rs = sample_results();
  const std::string t = format_results_table(rs, pareto_front(rs));
  std::istringstream in(t);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2 + rs.size()) << t;
  for (const char* col : {"subnet", "resolution", "MMACs", "Mparams", "top-1", "top-5", "loss", "pareto"})
    EXPECT_TRUE(has(lines[0], col)) << col;
  EXPECT_TRUE(has(lines[2], "R160-D2-E3-K3") && has(lines[2], "50.00") && has(lines[2], "60.50")) << lines[2];
  EXPECT_EQ(lines[2].back(), '*');
  EXPECT_NE(lines[4].back(), '*') << lines[4];
  EXPECT_TRUE(has(lines[5], "0.1000")) << lines[5];
  EXPECT_TRUE(has(format_results_table({}, {}), "subnet"));
}

TEST(EvalReport, CsvRoundTrip) {
  const auto rs = sample_results();
  const auto pf = pareto_front(rs);
  TempDir dir;
  write_results_csv(dir.file("r.csv"), rs, pf);
  const auto rows = parse_csv(read_file(dir.file("r.csv")));
  ASSERT_EQ(rows.size(), rs.size() + 1);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"name", "ks", "e", "d", "resolution", "macs", "params", "top1", "top5",
                                                "loss", "images", "pareto"}));
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto& r = rows[i + 1];
    ASSERT_EQ(r.size(), 12u);
    EXPECT_EQ(r[0], rs[i].name);
    EXPECT_EQ(r[1], "3 5 7");
    EXPECT_EQ(r[2], "3 4.5 6");
    EXPECT_EQ(r[3], "2 4");
    EXPECT_EQ(std::stoll(r[4]), rs[i].resolution);
    EXPECT_EQ(std::stoll(r[5]), rs[i].info.macs);
    EXPECT_EQ(std::stoll(r[6]), rs[i].info.params);
    EXPECT_EQ(std::stod(r[7]), rs[i].metrics.top1);  // shortest round-trip text: exact
    EXPECT_EQ(std::stod(r[8]), rs[i].metrics.top5);
    EXPECT_EQ(std::stod(r[9]), rs[i].metrics.loss);
    EXPECT_EQ(std::stoll(r[10]), 32);
    EXPECT_EQ(r[11], pf[i] ? "1" : "0");
  }
  EXPECT_TRUE(has(read_file(dir.file("r.csv")), "\"weird, \"\"name\"\"\""));
  EXPECT_FALSE(fs::exists(dir.file("r.csv.tmp")));
  // Python's csv module reads it the same way, when Python is there.
  if (std::system("/usr/bin/python3 -c 'import csv' >/dev/null 2>&1") == 0) {
    const std::string cmd = "/usr/bin/python3 -c \"import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); "
                            "print(len(r), r[3]['name'], r[3]['loss'], r[1]['top1'])\" " + dir.file("r.csv");
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {0};
    const size_t n = fread(buf, 1, sizeof buf - 1, p);
    pclose(p);
    EXPECT_EQ(std::string(buf, n), "5 weird, \"name\" 0.1 75.25\n");
  }
}

TEST(EvalReport, JsonFields) {
  const auto rs = sample_results();
  const auto pf = pareto_front(rs);
  ReportContext ctx{"ck.safetensors", "fashion_mnist", "Fashion-MNIST from x", "test", 2000};
  const json j = json::parse(results_json(ctx, rs, pf));
  EXPECT_EQ(j["checkpoint"], "ck.safetensors");
  EXPECT_EQ(j["dataset"], "fashion_mnist");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["bn_calib_images"], 2000);
  ASSERT_EQ(j["results"].size(), rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    const json& r = j["results"][i];
    EXPECT_EQ(r["name"], rs[i].name);
    EXPECT_EQ(r["subnet"]["ks"], json({3, 5, 7}));
    EXPECT_EQ(r["subnet"]["e"].dump(), "[3,4.5,6]");  // integral ratios as integers, as the reference writes
    EXPECT_EQ(r["subnet"]["d"], json({2, 4}));
    EXPECT_EQ(r["subnet"]["r"], json({rs[i].resolution}));
    EXPECT_EQ(r["resolution"], rs[i].resolution);
    EXPECT_EQ(r["macs"], rs[i].info.macs);
    EXPECT_EQ(r["params"], rs[i].info.params);
    EXPECT_EQ(r["top1"].get<double>(), rs[i].metrics.top1);
    EXPECT_EQ(r["top5"].get<double>(), rs[i].metrics.top5);
    EXPECT_EQ(r["loss"].get<double>(), rs[i].metrics.loss);
    EXPECT_EQ(r["images"], 32);
    EXPECT_EQ(r["pareto"].get<bool>(), static_cast<bool>(pf[i]));
  }
  // The subnet object is what --subnets reads back.
  const auto back = subnet_list_entries(j["results"][1]["subnet"].dump(), "x", {99});
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].setting, rs[1].setting);
  EXPECT_EQ(back[0].resolution, 160);
  EXPECT_TRUE(has(error_of([&] { results_json(ctx, rs, {true}); }), "1 Pareto flags for 5 results"));
}

// ---------------------------------------------------------------- plots

TEST(EvalReport, SvgHasADotPerResultTheFrontAndLabels) {
  const auto rs = sample_results();
  const auto pf = pareto_front(rs);
  const std::string s = plot_svg(rs, pf, "top-1 <vs> MACs & more");
  EXPECT_EQ(s.rfind("<?xml", 0), 0u);
  EXPECT_TRUE(has(s, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_EQ(s.substr(s.size() - 7), "</svg>\n");
  EXPECT_EQ(count_of(s, "<circle class=\"subnet"), rs.size());
  EXPECT_EQ(count_of(s, "<circle class=\"subnet pareto\""), 3u);
  EXPECT_EQ(count_of(s, "</circle>"), rs.size());
  EXPECT_EQ(count_of(s, "<polyline class=\"pareto-front\""), 1u);
  EXPECT_TRUE(has(s, "MACs (millions)"));
  EXPECT_TRUE(has(s, "top-1 accuracy (%)"));
  EXPECT_TRUE(has(s, "Pareto front"));  // legend
  EXPECT_TRUE(has(s, "top-1 &lt;vs&gt; MACs &amp; more"));
  EXPECT_TRUE(has(s, "<title>weird, &quot;name&quot; @128: top-1 55.00%"));
  EXPECT_EQ(count_of(s, "<text"), count_of(s, "</text>"));
  // The front's polyline runs through the 3 optimal dots in MACs order.
  const size_t at = s.find("points=\"") + 8;
  const std::string pts = s.substr(at, s.find('"', at) - at);
  EXPECT_EQ(count_of(pts, ","), 3u) << pts;
  // Dots are inside the plot area, higher top-1 higher up.
  auto attr = [&](size_t from, const std::string& name) {
    const size_t p = s.find(name + "=\"", from) + name.size() + 2;
    return std::stod(s.substr(p, s.find('"', p) - p));
  };
  std::vector<std::pair<double, double>> xy;
  for (size_t p = s.find("<circle class=\"subnet"); p != std::string::npos; p = s.find("<circle class=\"subnet", p + 1)) {
    xy.push_back({attr(p, "cx"), attr(p, "cy")});
    EXPECT_GE(xy.back().first, 80);
    EXPECT_LE(xy.back().first, kPlotWidth - 30);
    EXPECT_GE(xy.back().second, 64);
    EXPECT_LE(xy.back().second, kPlotHeight - 60);
  }
  // Dominated dots come first: "big but worse" (70 %) then "weird" (55 %).
  EXPECT_LT(xy[0].second, xy[1].second);
  // An empty result list still gives a valid picture.
  EXPECT_TRUE(has(plot_svg({}, {}, "empty"), "</svg>"));
}

TEST(EvalReport, PngIsValidAndDrawsTheDots) {
  const auto rs = sample_results();
  const std::string png = plot_png(rs, pareto_front(rs));
  const auto chunks = png_chunks(png);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front().type, "IHDR");
  EXPECT_EQ(chunks.back().type, "IEND");
  ASSERT_EQ(chunks[0].data.size(), 13u);
  const uint32_t w = be32_at(chunks[0].data, 0), h = be32_at(chunks[0].data, 4);
  EXPECT_EQ(w, uint32_t(kPlotWidth));
  EXPECT_EQ(h, uint32_t(kPlotHeight));
  EXPECT_EQ(chunks[0].data.substr(8), std::string("\x08\x02\x00\x00\x00", 5));
  std::string z;
  for (const auto& c : chunks)
    if (c.type == "IDAT") z += c.data;
  const size_t expect = size_t(h) * (1 + 3 * size_t(w));
  std::string raw(expect + 16, '\0');
  uLongf len = raw.size();
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(&raw[0]), &len, reinterpret_cast<const Bytef*>(z.data()), uLong(z.size())),
            Z_OK);
  ASSERT_EQ(len, expect);
  size_t red = 0, blue = 0, black = 0, white = 0;
  for (uint32_t y = 0; y < h; ++y) {
    const size_t row = y * (1 + 3 * size_t(w));
    EXPECT_EQ(raw[row], '\0') << "filter byte of row " << y;
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(&raw[row + 1 + 3 * x]);
      if (p[0] == 214 && p[1] == 39 && p[2] == 40) ++red;
      if (p[0] == 31 && p[1] == 119 && p[2] == 180) ++blue;
      if (p[0] == 0 && p[1] == 0 && p[2] == 0) ++black;
      if (p[0] == 255 && p[1] == 255 && p[2] == 255) ++white;
    }
  }
  EXPECT_GT(red, 3u * 60) << "3 front dots and the polyline";
  EXPECT_GT(blue, 2u * 40) << "2 dominated dots";
  EXPECT_GT(black, size_t(kPlotWidth - 110 + kPlotHeight - 110)) << "the axes";
  EXPECT_GT(white, size_t(w) * h / 2);
  // The corner is background.
  EXPECT_EQ(raw.substr(1, 3), std::string("\xff\xff\xff", 3));
  EXPECT_TRUE(has(error_of([] { encode_png_rgb(2, 2, std::vector<uint8_t>(11)); }), "11 bytes for a 2x2"));
}

TEST(EvalReport, PlotFormatByExtension) {
  const auto rs = sample_results();
  TempDir dir;
  write_plot(dir.file("a.SVG"), rs, pareto_front(rs), "t");
  write_plot(dir.file("b.png"), rs, pareto_front(rs), "t");
  EXPECT_EQ(read_file(dir.file("a.SVG")).rfind("<?xml", 0), 0u);
  EXPECT_EQ(read_file(dir.file("b.png")).substr(1, 3), "PNG");
  for (const std::string bad : {"x.jpg", "x", "dir.svg/x"}) {
    const std::string e = error_of([&] { check_plot_path(bad); });
    EXPECT_TRUE(has(e, "--plot '" + bad + "'") && has(e, ".svg") && has(e, ".png")) << e;
  }
  EXPECT_TRUE(has(error_of([&] { write_plot_svg(dir.file("no/such/x.svg"), rs, {}, "t"); }), "no/such/x.svg"));
}

// ---------------------------------------------------------------- selections

TEST(EvalData, SubnetListEntries) {
  const std::string text = R"([{"ks": [3], "e": [4], "d": [2], "r": [28]},
                               {"name": "mine", "ks": [7], "e": [6], "d": [4]}])";
  const auto e = subnet_list_entries(text, "'l.json'", {24, 32});
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].name, "subnet 0");
  EXPECT_EQ(e[0].resolution, 28);
  EXPECT_EQ(e[0].setting.ks, std::vector<int64_t>{3});
  EXPECT_EQ(e[1].name, "mine");
  EXPECT_EQ(e[1].resolution, 24);
  EXPECT_EQ(e[2].resolution, 32);
  EXPECT_EQ(e[2].setting.e, std::vector<double>{6});
  // One object is a list of one.
  EXPECT_EQ(subnet_list_entries(R"({"ks": [5], "e": [3], "d": [3]})", "x", {32}).size(), 1u);
  EXPECT_TRUE(has(error_of([] { subnet_list_entries("[]", "'l.json'", {32}); }), "'l.json': expected a JSON list"));
  EXPECT_TRUE(has(error_of([] { subnet_list_entries("[1]", "'l.json'", {32}); }), "'l.json' entry 0: a subnet must be"));
  EXPECT_TRUE(has(error_of([] { subnet_list_entries("[{\"ks\":[3],\"e\":[3],\"d\":[2]}, {\"ks\":[3],\"e\":[3]}]", "'l.json'", {32}); }),
                  "'l.json' entry 1: the subnet lacks 'd'"));
  EXPECT_TRUE(has(error_of([] { subnet_list_entries("[{\"name\": 3, \"ks\":[3],\"e\":[3],\"d\":[2]}]", "'l.json'", {32}); }),
                  "'name' must be a non-empty string"));
  EXPECT_TRUE(has(error_of([] { subnet_list_entries("[{", "'l.json'", {32}); }), "'l.json': not valid JSON"));
}

TEST(EvalData, RandomEntriesAreSampleSeedSubnets) {
  nn::OFAMobileNetV3 net(10);
  const auto e = random_entries(net, 3, 5, {28, 32});
  ASSERT_EQ(e.size(), 6u);
  for (int64_t i = 0; i < 3; ++i) {
    PyRandom rng(static_cast<uint64_t>(5 + i));
    const nn::SubnetSetting s = net.sample_active_subnet(rng);  // depends only on the seed
    for (int k = 0; k < 2; ++k) {
      const GridEntry& g = e[static_cast<size_t>(2 * i + k)];
      EXPECT_EQ(g.setting, s);
      EXPECT_EQ(g.name, "seed " + std::to_string(5 + i));
      EXPECT_EQ(g.resolution, k ? 32 : 28);
    }
  }
  EXPECT_EQ(result_label("seed 5", 28), "seed 5 @28");
  EXPECT_EQ(result_label("R28-D2-E3-K3", 28), "R28-D2-E3-K3");
}

// ---------------------------------------------------------------- options and configuration

TEST(EvalData, OptionErrorsNameTheOption) {
  auto err = [](const std::vector<std::string>& a) { return error_of([&] { args(a); }); };
  EXPECT_TRUE(has(err({"--data", "fashion_mnist", "--grid"}), "--checkpoint CK.safetensors is required"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "fashion_mnist"}),
                  "--data needs exactly one of --grid, --subnets LIST.json, --random N"));
  std::string e = err({"--checkpoint", "c", "--data", "fashion_mnist", "--grid", "--subnets", "l.json"});
  EXPECT_TRUE(has(e, "exactly one of --grid, --subnets") && has(e, "exclude each other")) << e;
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "fashion_mnist", "--grid", "--plot", "p.pdf"}),
                  "--plot 'p.pdf': unknown plot format '.pdf'"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--grid"}), "--grid applies to the data mode: add --data"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--info", "--csv", "x.csv"}), "--csv applies to the data mode"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "mnist", "--grid"}), "--data must be fashion_mnist or imagenet"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--split", "train"}),
                  "--split must be test or valid"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--seed", "3"}), "--seed applies to --random N"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--random", "0"}), "--random must be positive"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--random", "2", "--seed", "-1"}),
                  "--seed must be 0 or more"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--image-sizes", "28,x"}),
                  "each of --image-sizes must be an integer, got 'x'"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--image-sizes", "28,0"}),
                  "--image-sizes must list positive resolutions"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--calib-batch-size", "0"}),
                  "--calib-batch-size must be positive"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--calib-images", "-5"}),
                  "--calib-images must be positive"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--subnet", "s.json"}),
                  "with --data use --subnets"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--info"}), "exactly one of"));
  EXPECT_TRUE(has(err({"--checkpoint", "c", "--data", "imagenet", "--grid", "--set"}), "option --set needs a value"));
  EXPECT_TRUE(has(nn::eval_usage(), "--random N [--seed S]"));
}

TEST(EvalData, ConfigurationLayers) {
  nn::EvalOptions o = args({"--checkpoint", "c", "--data", "imagenet", "--data-path", "/d/it's here", "--grid",
                            "--calib-images", "16", "--calib-batch-size", "8", "--batch-size", "5", "--workers", "0",
                            "--set", "bn_calib_images=99", "--set", "manual_seed=3"});
  RunConfig c = eval_data_config(o);
  EXPECT_EQ(c.dataset, "imagenet");
  EXPECT_EQ(c.data_path, "/d/it's here");
  EXPECT_EQ(c.bn_calib_images, 16);  // the flag wins over --set
  EXPECT_EQ(c.bn_calib_batch_size, 8);
  EXPECT_EQ(c.base_batch_size, 5);
  EXPECT_EQ(test_batch_size(c), 20);
  EXPECT_EQ(c.n_worker, 0);
  EXPECT_EQ(c.manual_seed, 3);
  EXPECT_EQ(c.valid_size, 0);  // --split test reads no hold-out split
  TempDir dir;
  std::ofstream(dir.file("run.yaml")) << "valid_size: 100\nvalid_image_size: [24, 28]\nbn_calib_images: 50\n";
  o = args({"--checkpoint", "c", "--data", "fashion_mnist", "--grid", "--split", "valid", "--config", dir.file("run.yaml")});
  c = eval_data_config(o);
  EXPECT_EQ(c.dataset, "fashion_mnist");
  EXPECT_EQ(c.valid_size, 100);
  EXPECT_EQ(c.bn_calib_images, 50);
  EXPECT_EQ(validation_image_sizes(c), (std::vector<int64_t>{24, 28}));
  // A recipe (a file with stages): its keys outside the stages.
  std::ofstream(dir.file("recipe.yaml")) << "bn_calib_images: 64\nvalid_image_size: [28]\nstages:\n  - task: kernel\n"
                                            "  - task: depth\n    phase: 1\n";
  c = eval_data_config(
      args({"--checkpoint", "c", "--data", "fashion_mnist", "--random", "2", "--config", dir.file("recipe.yaml")}));
  EXPECT_EQ(c.bn_calib_images, 64);
  EXPECT_EQ(validation_image_sizes(c), std::vector<int64_t>{28});
  const std::string e = error_of([&] {
    eval_data_config(args({"--checkpoint", "c", "--data", "fashion_mnist", "--grid", "--set", "bn_calib_image=3"}));
  });
  EXPECT_TRUE(has(e, "bn_calib_image")) << e;
  EXPECT_TRUE(has(error_of([&] {
                    eval_data_config(args({"--checkpoint", "c", "--data", "fashion_mnist", "--grid", "--config",
                                           dir.file("none.yaml")}));
                  }),
                  "none.yaml"));
}

// ---------------------------------------------------------------- end to end

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int sh : {24, 16, 8, 0}) v.push_back(static_cast<uint8_t>(x >> sh));
}

// A Fashion-MNIST-format IDX pair: n 28x28 images (class-dependent stripes), label i % 10.
void write_idx_set(const std::string& dir, const std::string& prefix, uint32_t n) {
  std::vector<uint8_t> im = {0, 0, 8, 3};
  for (uint32_t v : {n, 28u, 28u}) put_be32(im, v);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t y = 0; y < 28; ++y)
      for (uint32_t x = 0; x < 28; ++x) im.push_back(static_cast<uint8_t>(((x + y * (i % 10)) * 37 + i * 11) % 256));
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", im);
  std::vector<uint8_t> lb = {0, 0, 8, 1};
  put_be32(lb, n);
  for (uint32_t i = 0; i < n; ++i) lb.push_back(static_cast<uint8_t>(i % 10));
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
}

struct DataFixture {
  TempDir dir;
  std::string data, ck;
  DataFixture() {
    data = dir.file("fmnist");
    fs::create_directories(data);
    write_idx_set(data, "train", 64);
    write_idx_set(data, "t10k", 32);
    ck = dir.file("super.safetensors");
    nn::OFAMobileNetV3 net(10, 0.1, 1e-5, 0.1, 1.0, {3, 5, 7}, {3, 4, 6}, {2, 3, 4});
    nn::save_supernet_checkpoint(ck, net);
  }
  std::vector<std::string> base(const std::vector<std::string>& more) const {
    std::vector<std::string> a = {"--checkpoint", ck, "--data", "fashion_mnist", "--data-path", data,
                                  "--calib-images", "16", "--calib-batch-size", "8", "--batch-size", "4", "--workers", "2",
                                  // One OpenMP thread: with the other processes of a parallel ctest run,
                                  // spinning OpenMP threads can make these tiny passes 30x slower.
                                  "--set", "threads=1"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(EvalDataEndToEnd, GridOnATinyFashionMnistSet) {
  DataFixture fx;
  std::ostringstream out, err;
  const auto results = run_eval_data(
      args(fx.base({"--grid", "--image-sizes", "32", "--csv", fx.dir.file("r.csv"), "--json", fx.dir.file("r.json"),
                    "--plot", fx.dir.file("r.svg")})),
      out, err, false);
  ASSERT_EQ(results.size(), 8u);
  const auto lines = lines_of(out.str());
  // header, rule, 8 rows, the Pareto line, the files line
  ASSERT_EQ(lines.size(), 12u) << out.str();
  EXPECT_TRUE(has(lines[2], "R32-D2-E3-K3")) << lines[2];
  EXPECT_TRUE(has(lines[9], "R32-D4-E6-K7")) << lines[9];
  EXPECT_EQ(lines[10].rfind("Pareto-optimal (top-1 against MACs): ", 0), 0u) << lines[10];
  EXPECT_TRUE(has(lines[11], "r.csv") && has(lines[11], "r.json") && has(lines[11], "r.svg")) << lines[11];
  for (const SubnetResult& r : results) {
    EXPECT_EQ(r.metrics.images, 32);
    EXPECT_GE(r.metrics.top1, 0);
    EXPECT_LE(r.metrics.top1, 100);
    EXPECT_GE(r.metrics.top5, r.metrics.top1);
    EXPECT_LE(r.metrics.top5, 100);
    EXPECT_GT(r.metrics.loss, 0);
    EXPECT_EQ(r.resolution, 32);
    EXPECT_GT(r.info.macs, 0);
    EXPECT_EQ(r.setting.ks.size(), 20u);
  }
  EXPECT_LT(results.front().info.macs, results.back().info.macs);
  // One progress line per subnet (not a terminal), after the two header lines.
  const auto el = lines_of(err.str());
  ASSERT_EQ(el.size(), 10u) << err.str();
  EXPECT_EQ(el[2].rfind("[1/8] R32-D2-E3-K3: top-1 ", 0), 0u) << el[2];
  EXPECT_FALSE(has(err.str(), "\r"));
  // Files.
  const json j = json::parse(read_file(fx.dir.file("r.json")));
  EXPECT_EQ(j["results"].size(), 8u);
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["results"][7]["name"], "R32-D4-E6-K7");
  EXPECT_EQ(j["results"][7]["images"], 32);
  EXPECT_EQ(parse_csv(read_file(fx.dir.file("r.csv"))).size(), 9u);
  EXPECT_EQ(count_of(read_file(fx.dir.file("r.svg")), "<circle class=\"subnet"), 8u);
  // The same subnet from a --subnets list: the same numbers (the calibration
  // images and their transforms depend only on the seed and the resolution).
  std::ofstream(fx.dir.file("l.json")) << R"([{"name": "full", "ks": [7], "e": [6], "d": [4], "r": [32]}])";
  std::ostringstream out2, err2;
  const auto again = run_eval_data(args(fx.base({"--subnets", fx.dir.file("l.json")})), out2, err2, false);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].name, "full");
  EXPECT_EQ(again[0].metrics.top1, results.back().metrics.top1);
  EXPECT_EQ(again[0].metrics.loss, results.back().metrics.loss);
  EXPECT_EQ(again[0].info.macs, results.back().info.macs);
}

TEST(EvalDataEndToEnd, RandomSubnetsOnTheValidSplitWithAPng) {
  DataFixture fx;
  std::ostringstream out, err;
  const auto results = run_eval_data(
      args(fx.base({"--random", "2", "--seed", "4", "--image-sizes", "24,28", "--split", "valid", "--set",
                    "valid_size=16", "--plot", fx.dir.file("p.png")})),
      out, err, true);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].name, "seed 4");
  EXPECT_EQ(results[3].name, "seed 5");
  EXPECT_EQ(results[1].resolution, 28);
  for (const SubnetResult& r : results) EXPECT_EQ(r.metrics.images, 16);  // the hold-out images
  EXPECT_TRUE(has(out.str(), "\nseed 4          24  ")) << out.str();
  EXPECT_TRUE(has(out.str(), "Pareto-optimal (top-1 against MACs): seed ")) << out.str();
  EXPECT_TRUE(has(err.str(), "\r\x1b[K[1/4] seed 4 @24: BN statistics 1/2"));
  EXPECT_TRUE(has(err.str(), "evaluating 1/1"));
  png_chunks(read_file(fx.dir.file("p.png")));
}

// --data imagenet: an ImageFolder tree (train/, val/) made from the IDX set.
TEST(EvalDataEndToEnd, ImageFolderTree) {
  DataFixture fx;
  data::ExportJpegOptions eo;
  eo.out_dir = fx.dir.file("tree");
  eo.data_dir = fx.data;
  eo.quality = 95;
  const data::ExportJpegResult ex = data::export_fashion_mnist_jpeg(eo);
  ASSERT_EQ(ex.val_images, 32);
  auto a = fx.base({"--subnets", fx.dir.file("l.json"), "--csv", fx.dir.file("r.csv")});
  a[3] = "imagenet";
  a[5] = fx.dir.file("tree");
  std::ofstream(fx.dir.file("l.json")) << R"({"ks": [5], "e": [4], "d": [3], "r": [24]})";
  std::ostringstream out, err;
  const auto results = run_eval_data(args(a), out, err, false);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].name, "subnet 0");
  EXPECT_EQ(results[0].metrics.images, 32);
  EXPECT_TRUE(has(err.str(), "ImageFolder " + fx.dir.file("tree"))) << err.str();
  EXPECT_EQ(parse_csv(read_file(fx.dir.file("r.csv"))).size(), 2u);
}

TEST(EvalDataEndToEnd, ClearErrors) {
  DataFixture fx;
  std::ostringstream out, err;
  auto run = [&](const std::vector<std::string>& a) { return error_of([&] { run_eval_data(args(a), out, err, false); }); };
  // A static checkpoint.
  nn::OFAMobileNetV3 net(10);
  nn::save_static_checkpoint(fx.dir.file("static.safetensors"), *net.get_active_subnet());
  auto a = fx.base({"--grid", "--image-sizes", "32"});
  a[1] = fx.dir.file("static.safetensors");
  std::string e = run(a);
  EXPECT_TRUE(has(e, "static subnet checkpoint") && has(e, "supernet checkpoint")) << e;
  // The data folder is missing: name it and the key / option to fix.
  a = fx.base({"--grid", "--image-sizes", "32"});
  a[5] = fx.dir.file("nowhere");
  e = run(a);
  EXPECT_TRUE(has(e, fx.dir.file("nowhere")) && has(e, "--data-path") && has(e, "data_path")) << e;
  // A checkpoint for another number of classes.
  nn::OFAMobileNetV3 five(5);
  nn::save_supernet_checkpoint(fx.dir.file("five.safetensors"), five);
  a = fx.base({"--grid", "--image-sizes", "32"});
  a[1] = fx.dir.file("five.safetensors");
  e = run(a);
  EXPECT_TRUE(has(e, "classifies 5 classes") && has(e, "10 classes")) << e;
  // A subnet that does not fit the supernet, named before any evaluation.
  std::ofstream(fx.dir.file("bad.json")) << R"([{"name": "huge", "ks": [9], "e": [6], "d": [4]}])";
  e = run(fx.base({"--subnets", fx.dir.file("bad.json"), "--image-sizes", "32"}));
  EXPECT_TRUE(has(e, "subnet 'huge' does not fit")) << e;
  EXPECT_TRUE(has(run(fx.base({"--subnets", fx.dir.file("none.json")})), "--subnets file '" + fx.dir.file("none.json")));
  // Output folders are checked first.
  e = run(fx.base({"--grid", "--csv", fx.dir.file("no/dir/r.csv")}));
  EXPECT_TRUE(has(e, "--csv") && has(e, "does not exist")) << e;
  // --split valid without a hold-out split.
  e = run(fx.base({"--grid", "--split", "valid", "--set", "valid_size=0"}));
  EXPECT_TRUE(has(e, "--split valid needs a hold-out split")) << e;
  e = run(fx.base({"--grid", "--device", "cuda:99"}));
  EXPECT_TRUE(has(e, "ofa_eval --device: 'cuda:99' but") && has(e, "use --device cpu")) << e;
}

// The built binary: exit status, stdout table, stderr progress.
TEST(EvalDataEndToEnd, BuiltTool) {
  std::error_code ec;
  const fs::path tool = fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "ofa_eval";
  if (ec || !fs::exists(tool)) GTEST_SKIP() << "no ofa_eval binary next to the tests (" << tool << ")";
  DataFixture fx;
  std::string cmd = tool.string();
  for (const std::string& a : fx.base({"--grid", "--image-sizes", "24", "--json", fx.dir.file("o.json")})) cmd += " '" + a + "'";
  cmd += " 2>" + fx.dir.file("err.txt");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int rc = pclose(p);
  ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out << read_file(fx.dir.file("err.txt"));
  EXPECT_EQ(lines_of(out).size(), 12u) << out;
  EXPECT_TRUE(has(read_file(fx.dir.file("err.txt")), "[8/8] R24-D4-E6-K7: top-1"));
  EXPECT_EQ(json::parse(read_file(fx.dir.file("o.json")))["results"].size(), 8u);
}

}  // namespace
}  // namespace ofa::test
