#include "ofa/eval_report.h"

#include "engine/file_io.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ofa {

namespace {

using ojson = nlohmann::ordered_json;

// The shortest text that reads back to the same double; integers without ".0".
std::string num_text(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return nlohmann::json(v).dump();
}

template <class T>
std::string space_list(const std::vector<T>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + num_text(static_cast<double>(v[i]));
  return out;
}

template <class T>
ojson json_list(const std::vector<T>& v) {
  ojson a = ojson::array();
  for (const T& x : v) {
    const double d = static_cast<double>(x);
    if (std::nearbyint(d) == d && std::fabs(d) < 1e15) a.push_back(static_cast<int64_t>(d));
    else a.push_back(d);
  }
  return a;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Atomic: a failed or interrupted write leaves no half file.
void write_file(const std::string& path, const std::string& bytes, const char* what) {
  write_file_atomic(path, bytes, str_cat("writing the ", what));
}

std::vector<bool> pareto_or_empty(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto) {
  OFA_CHECK(pareto.empty() || pareto.size() == results.size(), "eval report: ", pareto.size(),
            " Pareto flags for ", results.size(), " results");
  return pareto.empty() ? std::vector<bool>(results.size(), false) : pareto;
}

// ---- plot geometry shared by the SVG and the PNG

struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
  int decimals = 0;
};

// A range rounded out to a 1/2/5 x 10^k step giving about 5 intervals.
Axis nice_axis(double lo, double hi, double clamp_lo, double clamp_hi) {
  if (!(hi > lo)) {
    const double pad = std::max(0.5, std::fabs(lo) * 0.05);
    lo -= pad;
    hi += pad;
  } else {
    const double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  Axis a;
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  a.step = step;
  a.lo = std::max(std::floor(lo / step) * step, clamp_lo);
  a.hi = std::min(std::ceil(hi / step) * step, clamp_hi);
  if (!(a.hi > a.lo)) a.hi = a.lo + step;
  for (int64_t k = static_cast<int64_t>(std::ceil(a.lo / step - 1e-9)); k * step <= a.hi + step * 1e-9; ++k)
    a.ticks.push_back(static_cast<double>(k) * step);
  a.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return a;
}

struct Layout {
  int width = kPlotWidth, height = kPlotHeight;
  int left = 80, right = 30, top = 64, bottom = 60;
  Axis x, y;
  std::vector<double> xs, ys;  // MMACs, top-1 per result
  std::vector<size_t> front;   // Pareto-optimal results in MACs order (then top-1)

  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (width - left - right); }
  double py(double v) const { return height - bottom - (v - y.lo) / (y.hi - y.lo) * (height - top - bottom); }
  double plot_left() const { return left; }
  double plot_right() const { return width - right; }
  double plot_top() const { return top; }
  double plot_bottom() const { return height - bottom; }
};

Layout make_layout(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto) {
  Layout l;
  for (const SubnetResult& r : results) {
    l.xs.push_back(static_cast<double>(r.info.macs) / 1e6);
    l.ys.push_back(r.metrics.top1);
  }
  if (results.empty()) {
    l.x = nice_axis(0, 1, -1e300, 1e300);
    l.y = nice_axis(0, 100, 0, 100);
  } else {
    const auto [xlo, xhi] = std::minmax_element(l.xs.begin(), l.xs.end());
    const auto [ylo, yhi] = std::minmax_element(l.ys.begin(), l.ys.end());
    l.x = nice_axis(*xlo, *xhi, *xlo >= 0 ? 0.0 : -1e300, 1e300);
    l.y = nice_axis(*ylo, *yhi, *ylo >= 0 ? 0.0 : -1e300, *yhi <= 100 ? 100.0 : 1e300);
  }
  for (size_t i = 0; i < results.size(); ++i)
    if (pareto[i]) l.front.push_back(i);
  std::sort(l.front.begin(), l.front.end(), [&](size_t a, size_t b) {
    return l.xs[a] != l.xs[b] ? l.xs[a] < l.xs[b] : l.ys[a] < l.ys[b];
  });
  return l;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// ---- a tiny RGB rasterizer

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kBlack{0, 0, 0}, kGrid{221, 221, 221}, kBlue{31, 119, 180},
    kRed{214, 39, 40}, kDark{40, 40, 40};

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;
  Canvas(int w_, int h_) : w(w_), h(h_), rgb(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void hline(int x0, int x1, int y, Rgb c) {
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, c);
  }
  void vline(int x, int y0, int y1, Rgb c) {
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y) set(x, y, c);
  }
  void disc(double cx, double cy, double r, Rgb c) {
    for (int y = static_cast<int>(std::floor(cy - r)); y <= static_cast<int>(std::ceil(cy + r)); ++y)
      for (int x = static_cast<int>(std::floor(cx - r)); x <= static_cast<int>(std::ceil(cx + r)); ++x)
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) set(x, y, c);
  }
  // A line `thickness` pixels wide: discs along it, one per pixel step.
  void line(double x0, double y0, double x1, double y1, double thickness, Rgb c) {
    const int n = std::max(1, static_cast<int>(std::ceil(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0)))));
    for (int i = 0; i <= n; ++i) {
      const double t = static_cast<double>(i) / n;
      disc(x0 + t * (x1 - x0), y0 + t * (y1 - y0), thickness / 2, c);
    }
  }
};

void put_u32(std::string& s, uint32_t v) {
  for (int sh : {24, 16, 8, 0}) s.push_back(static_cast<char>((v >> sh) & 0xff));
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

// ---------------------------------------------------------------- Pareto front

std::vector<bool> pareto_front(const std::vector<ParetoPoint>& p) {
  std::vector<bool> out(p.size(), true);
  for (size_t i = 0; i < p.size(); ++i)
    for (size_t j = 0; j < p.size() && out[i]; ++j)
      if (j != i && p[j].x <= p[i].x && p[j].y >= p[i].y && (p[j].x < p[i].x || p[j].y > p[i].y)) out[i] = false;
  return out;
}

std::vector<bool> pareto_front(const std::vector<SubnetResult>& results) {
  std::vector<ParetoPoint> p;
  for (const SubnetResult& r : results) p.push_back({static_cast<double>(r.info.macs), r.metrics.top1});
  return pareto_front(p);
}

// ---------------------------------------------------------------- table

std::string format_results_table(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto_in) {
  const std::vector<bool> pareto = pareto_or_empty(results, pareto_in);
  size_t wn = 6;
  for (const SubnetResult& r : results) wn = std::max(wn, r.name.size());
  const int w = static_cast<int>(wn);
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-*s  %10s  %9s  %8s  %7s  %7s  %8s  %s\n", w, "subnet", "resolution", "MMACs", "Mparams",
                "top-1", "top-5", "loss", "pareto");
  out += buf;
  out += std::string(static_cast<size_t>(w) + 2 + 10 + 2 + 9 + 2 + 8 + 2 + 7 + 2 + 7 + 2 + 8 + 2 + 6, '-') + "\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const SubnetResult& r = results[i];
    std::snprintf(buf, sizeof buf, "%-*s  %10lld  %9.2f  %8.3f  %7.2f  %7.2f  %8.4f  %s\n", w, r.name.c_str(),
                  static_cast<long long>(r.resolution), r.info.macs / 1e6, r.info.params / 1e6, r.metrics.top1,
                  r.metrics.top5, r.metrics.loss, pareto[i] ? "*" : "");
    // Drop the trailing blank of rows off the front.
    std::string line = buf;
    while (line.size() >= 2 && line[line.size() - 2] == ' ') line.erase(line.size() - 2, 1);
    out += line;
  }
  return out;
}

// ---------------------------------------------------------------- CSV / JSON

std::string results_csv(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto_in) {
  const std::vector<bool> pareto = pareto_or_empty(results, pareto_in);
  std::string out = "name,ks,e,d,resolution,macs,params,top1,top5,loss,images,pareto\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const SubnetResult& r = results[i];
    out += csv_field(r.name) + "," + space_list(r.setting.ks) + "," + space_list(r.setting.e) + "," +
           space_list(r.setting.d) + "," + std::to_string(r.resolution) + "," + std::to_string(r.info.macs) + "," +
           std::to_string(r.info.params) + "," + num_text(r.metrics.top1) + "," + num_text(r.metrics.top5) + "," +
           num_text(r.metrics.loss) + "," + std::to_string(r.metrics.images) + "," + (pareto[i] ? "1" : "0") + "\n";
  }
  return out;
}

void write_results_csv(const std::string& path, const std::vector<SubnetResult>& results,
                       const std::vector<bool>& pareto) {
  write_file(path, results_csv(results, pareto), "CSV file (--csv)");
}

std::string results_json(const ReportContext& ctx, const std::vector<SubnetResult>& results,
                         const std::vector<bool>& pareto_in) {
  const std::vector<bool> pareto = pareto_or_empty(results, pareto_in);
  ojson j;
  j["checkpoint"] = ctx.checkpoint;
  j["dataset"] = ctx.dataset;
  j["data"] = ctx.data_description;
  j["split"] = ctx.split;
  j["bn_calib_images"] = ctx.bn_calib_images;
  ojson rs = ojson::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const SubnetResult& r = results[i];
    ojson o;
    o["name"] = r.name;
    ojson s;
    s["ks"] = json_list(r.setting.ks);
    s["e"] = json_list(r.setting.e);
    s["d"] = json_list(r.setting.d);
    s["r"] = ojson::array({r.resolution});
    o["subnet"] = s;
    o["resolution"] = r.resolution;
    o["macs"] = r.info.macs;
    o["params"] = r.info.params;
    o["top1"] = r.metrics.top1;
    o["top5"] = r.metrics.top5;
    o["loss"] = r.metrics.loss;
    o["images"] = r.metrics.images;
    o["pareto"] = static_cast<bool>(pareto[i]);
    rs.push_back(o);
  }
  j["results"] = rs;
  return j.dump(2) + "\n";
}

void write_results_json(const std::string& path, const ReportContext& ctx, const std::vector<SubnetResult>& results,
                        const std::vector<bool>& pareto) {
  write_file(path, results_json(ctx, results, pareto), "JSON file (--json)");
}

// ---------------------------------------------------------------- SVG

std::string plot_svg(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto_in,
                     const std::string& title) {
  const std::vector<bool> pareto = pareto_or_empty(results, pareto_in);
  const Layout l = make_layout(results, pareto);
  std::ostringstream s;
  auto f1 = [](double v) { return fixed(v, 1); };
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << l.width << "\" height=\"" << l.height
    << "\" viewBox=\"0 0 " << l.width << " " << l.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text class=\"title\" x=\"" << l.width / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">"
    << xml_escape(title) << "</text>\n";
  // Grid lines and tick labels.
  for (double t : l.x.ticks) {
    const double x = l.px(t);
    s << "<line class=\"grid\" x1=\"" << f1(x) << "\" y1=\"" << l.plot_top() << "\" x2=\"" << f1(x) << "\" y2=\""
      << l.plot_bottom() << "\" stroke=\"#dddddd\"/>\n"
      << "<line class=\"tick\" x1=\"" << f1(x) << "\" y1=\"" << l.plot_bottom() << "\" x2=\"" << f1(x) << "\" y2=\""
      << l.plot_bottom() + 5 << "\" stroke=\"black\"/>\n"
      << "<text class=\"tick-label\" x=\"" << f1(x) << "\" y=\"" << l.plot_bottom() + 19
      << "\" text-anchor=\"middle\">" << fixed(t, l.x.decimals) << "</text>\n";
  }
  for (double t : l.y.ticks) {
    const double y = l.py(t);
    s << "<line class=\"grid\" x1=\"" << l.plot_left() << "\" y1=\"" << f1(y) << "\" x2=\"" << l.plot_right()
      << "\" y2=\"" << f1(y) << "\" stroke=\"#dddddd\"/>\n"
      << "<line class=\"tick\" x1=\"" << l.plot_left() - 5 << "\" y1=\"" << f1(y) << "\" x2=\"" << l.plot_left()
      << "\" y2=\"" << f1(y) << "\" stroke=\"black\"/>\n"
      << "<text class=\"tick-label\" x=\"" << l.plot_left() - 8 << "\" y=\"" << f1(y + 4)
      << "\" text-anchor=\"end\">" << fixed(t, l.y.decimals) << "</text>\n";
  }
  // Axes and their labels.
  s << "<line class=\"axis\" x1=\"" << l.plot_left() << "\" y1=\"" << l.plot_bottom() << "\" x2=\"" << l.plot_right()
    << "\" y2=\"" << l.plot_bottom() << "\" stroke=\"black\"/>\n"
    << "<line class=\"axis\" x1=\"" << l.plot_left() << "\" y1=\"" << l.plot_top() << "\" x2=\"" << l.plot_left()
    << "\" y2=\"" << l.plot_bottom() << "\" stroke=\"black\"/>\n"
    << "<text class=\"axis-label\" x=\"" << (l.plot_left() + l.plot_right()) / 2 << "\" y=\"" << l.height - 15
    << "\" text-anchor=\"middle\" font-size=\"13\">MACs (millions)</text>\n"
    << "<text class=\"axis-label\" x=\"22\" y=\"" << (l.plot_top() + l.plot_bottom()) / 2
    << "\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 22 " << (l.plot_top() + l.plot_bottom()) / 2
    << ")\">top-1 accuracy (%)</text>\n";
  // The front, under the dots.
  if (!l.front.empty()) {
    s << "<polyline class=\"pareto-front\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"";
    for (size_t k = 0; k < l.front.size(); ++k)
      s << (k ? " " : "") << f1(l.px(l.xs[l.front[k]])) << "," << f1(l.py(l.ys[l.front[k]]));
    s << "\"/>\n";
  }
  // Dots: the dominated ones first so the front's stay on top.
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < results.size(); ++i) {
      if (pareto[i] != (pass == 1)) continue;
      const SubnetResult& r = results[i];
      s << "<circle class=\"" << (pareto[i] ? "subnet pareto" : "subnet") << "\" cx=\"" << f1(l.px(l.xs[i]))
        << "\" cy=\"" << f1(l.py(l.ys[i])) << "\" r=\"" << (pareto[i] ? 5 : 4) << "\" fill=\""
        << (pareto[i] ? "#d62728" : "#1f77b4") << "\" stroke=\"#282828\" stroke-width=\"0.8\"><title>"
        << xml_escape(r.name) << " @" << r.resolution << ": top-1 " << fixed(r.metrics.top1, 2) << "%, "
        << fixed(l.xs[i], 2) << " MMACs, " << fixed(r.info.params / 1e6, 3) << " Mparams"
        << (pareto[i] ? " (Pareto-optimal)" : "") << "</title></circle>\n";
    }
  // Legend: one row above the plot area, right-aligned, clear of the dots.
  const double lx = l.plot_right() - 190, ly = 38;
  s << "<g class=\"legend\">\n"
    << "<circle class=\"legend-marker\" cx=\"" << lx + 6 << "\" cy=\"" << ly + 8
    << "\" r=\"4\" fill=\"#1f77b4\" stroke=\"#282828\" stroke-width=\"0.8\"/>\n"
    << "<text x=\"" << lx + 16 << "\" y=\"" << ly + 12 << "\">subnet</text>\n"
    << "<line x1=\"" << lx + 76 << "\" y1=\"" << ly + 8 << "\" x2=\"" << lx + 96 << "\" y2=\"" << ly + 8
    << "\" stroke=\"#d62728\" stroke-width=\"2\"/>\n"
    << "<circle class=\"legend-marker\" cx=\"" << lx + 86 << "\" cy=\"" << ly + 8
    << "\" r=\"5\" fill=\"#d62728\" stroke=\"#282828\" stroke-width=\"0.8\"/>\n"
    << "<text x=\"" << lx + 102 << "\" y=\"" << ly + 12 << "\">Pareto front</text>\n"
    << "</g>\n"
    << "</svg>\n";
  return s.str();
}

void write_plot_svg(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto,
                    const std::string& title) {
  write_file(path, plot_svg(results, pareto, title), "plot (--plot)");
}

// ---------------------------------------------------------------- PNG

std::string encode_png_rgb(int width, int height, const std::vector<uint8_t>& rgb) {
  OFA_CHECK(width > 0 && height > 0 && rgb.size() == static_cast<size_t>(width) * height * 3,
            "encode_png_rgb: ", rgb.size(), " bytes for a ", width, "x", height, " RGB image");
  std::string raw;
  raw.reserve(static_cast<size_t>(height) * (1 + 3 * static_cast<size_t>(width)));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter type 0 (none)
    raw.append(reinterpret_cast<const char*>(&rgb[static_cast<size_t>(y) * width * 3]), static_cast<size_t>(width) * 3);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(&z[0]), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
                           static_cast<uLong>(raw.size()), 9);
  OFA_CHECK(rc == Z_OK, "encode_png_rgb: zlib compress2 failed (code ", rc, ")");
  z.resize(zlen);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, filter 0, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return png;
}

std::string plot_png(const std::vector<SubnetResult>& results, const std::vector<bool>& pareto_in) {
  const std::vector<bool> pareto = pareto_or_empty(results, pareto_in);
  const Layout l = make_layout(results, pareto);
  Canvas c(l.width, l.height);
  const int x0 = static_cast<int>(l.plot_left()), x1 = static_cast<int>(l.plot_right());
  const int y0 = static_cast<int>(l.plot_top()), y1 = static_cast<int>(l.plot_bottom());
  for (double t : l.x.ticks) {
    const int x = static_cast<int>(std::lround(l.px(t)));
    c.vline(x, y0, y1, kGrid);
    c.vline(x, y1, y1 + 5, kBlack);
  }
  for (double t : l.y.ticks) {
    const int y = static_cast<int>(std::lround(l.py(t)));
    c.hline(x0, x1, y, kGrid);
    c.hline(x0 - 5, x0, y, kBlack);
  }
  c.hline(x0, x1, y1, kBlack);
  c.vline(x0, y0, y1, kBlack);
  for (size_t k = 1; k < l.front.size(); ++k) {
    const size_t a = l.front[k - 1], b = l.front[k];
    c.line(l.px(l.xs[a]), l.py(l.ys[a]), l.px(l.xs[b]), l.py(l.ys[b]), 2.0, kRed);
  }
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < results.size(); ++i) {
      if (pareto[i] != (pass == 1)) continue;
      const double r = pareto[i] ? 5 : 4;
      c.disc(l.px(l.xs[i]), l.py(l.ys[i]), r + 1, kDark);
      c.disc(l.px(l.xs[i]), l.py(l.ys[i]), r, pareto[i] ? kRed : kBlue);
    }
  return encode_png_rgb(c.w, c.h, c.rgb);
}

void write_plot_png(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto) {
  write_file(path, plot_png(results, pareto), "plot (--plot)");
}

namespace {
std::string lower_extension(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot);
  for (char& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return e;
}
}  // namespace

void check_plot_path(const std::string& path) {
  const std::string e = lower_extension(path);
  OFA_CHECK(e == ".svg" || e == ".png", "--plot '", path, "': unknown plot format '", e.empty() ? "(no extension)" : e,
            "'; name the file .svg (with labels) or .png (no text)");
}

void write_plot(const std::string& path, const std::vector<SubnetResult>& results, const std::vector<bool>& pareto,
                const std::string& title) {
  check_plot_path(path);
  if (lower_extension(path) == ".svg") write_plot_svg(path, results, pareto, title);
  else write_plot_png(path, results, pareto);
}

}  // namespace ofa
