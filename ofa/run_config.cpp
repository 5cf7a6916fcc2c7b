// Run configuration: YAML parsing, printing and validation, all driven by the
// key table OFA_RUN_CONFIG_KEYS in run_config.h.
#include "ofa/run_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>

namespace ofa {
namespace {

// ---------------------------------------------------------------- text helpers

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Shortest decimal text that reads back as exactly `v` (round trip of doubles).
std::string format_double(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // Whole numbers read better without an exponent: 10000.0, not 1e+04.
  if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  // Keep the text a float for readers: 1 -> 1.0, but 1e-05 stays.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string quote(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

template <class T>
std::string join(const std::vector<T>& v, const std::string& sep, const std::function<std::string(const T&)>& f) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + f(v[i]);
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// ---------------------------------------------------------------- value codecs

std::string where_of(const YAML::Node& n, const std::string& source, bool is_file) {
  if (!is_file) return source;
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return source;
  return str_cat(source, ":", m.line + 1, ":", m.column + 1);
}

// What a node holds, in words, for "expected X, got Y" messages.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar:
      return n.Tag() == "!" ? "the quoted string " + quote(n.Scalar()) : "'" + n.Scalar() + "'";
    default: return "an undefined value";
  }
}

// A scalar the author wrote without quotes: only those may be numbers or bools.
bool plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() != "!"; }

bool parse_int_text(const std::string& t, int64_t* out) {
  static const std::regex re("[-+]?[0-9]+");
  if (!std::regex_match(t, re)) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno == ERANGE || *end) return false;
  *out = v;
  return true;
}

bool parse_double_text(const std::string& t, double* out) {
  static const std::regex re("[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  if (!std::regex_match(t, re)) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (errno == ERANGE || *end || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

// Each codec: the type's name in messages, a parser that throws a message
// naming what it expected, and a printer whose text the parser reads back.
template <class T>
struct Codec;

template <>
struct Codec<std::string> {
  static const char* type() { return "string"; }
  static std::string parse(const YAML::Node& n) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) throw Error(str_cat("expected a string, got ", describe(n)));
    return n.Scalar();
  }
  static std::string print(const std::string& v) { return quote(v); }
};

template <>
struct Codec<int64_t> {
  static const char* type() { return "integer"; }
  static int64_t parse(const YAML::Node& n) {
    int64_t v = 0;
    if (!plain_scalar(n) || !parse_int_text(trim(n.Scalar()), &v))
      throw Error(str_cat("expected an integer, got ", describe(n)));
    return v;
  }
  static std::string print(int64_t v) { return std::to_string(v); }
};

template <>
struct Codec<double> {
  static const char* type() { return "number"; }
  static double parse(const YAML::Node& n) {
    double v = 0;
    if (!plain_scalar(n) || !parse_double_text(trim(n.Scalar()), &v))
      throw Error(str_cat("expected a finite number, got ", describe(n)));
    return v;
  }
  static std::string print(double v) { return format_double(v); }
};

template <>
struct Codec<bool> {
  static const char* type() { return "bool"; }
  static bool parse(const YAML::Node& n) {
    if (plain_scalar(n)) {
      const std::string t = n.Scalar();
      if (t == "true" || t == "True" || t == "TRUE") return true;
      if (t == "false" || t == "False" || t == "FALSE") return false;
    }
    throw Error(str_cat("expected true or false, got ", describe(n)));
  }
  static std::string print(bool v) { return v ? "true" : "false"; }
};

// Lists: a YAML sequence, one plain value, or the reference's comma string.
template <class E>
struct Codec<std::vector<E>> {
  static std::string type() { return str_cat("list of ", Codec<E>::type(), "s"); }
  static std::vector<E> parse(const YAML::Node& n) {
    std::vector<E> out;
    if (n.IsSequence()) {
      for (size_t i = 0; i < n.size(); ++i) {
        try {
          out.push_back(Codec<E>::parse(n[i]));
        } catch (const Error& e) {
          throw Error(str_cat("element ", i, ": ", e.what()));
        }
      }
      return out;
    }
    if (n.IsScalar()) {
      const std::vector<std::string> parts = split(n.Scalar(), ',');
      for (size_t i = 0; i < parts.size(); ++i) {
        YAML::Node part(trim(parts[i]));  // a plain scalar again
        try {
          out.push_back(Codec<E>::parse(part));
        } catch (const Error& e) {
          throw Error(str_cat("expected a ", type(), " ([a, b] or \"a,b\"), but item ", i, " of ", describe(n),
                              ": ", e.what()));
        }
      }
      return out;
    }
    throw Error(str_cat("expected a ", type(), " ([a, b] or \"a,b\"), got ", describe(n)));
  }
  static std::string print(const std::vector<E>& v) {
    return "[" + join<E>(v, ", ", [](const E& x) { return Codec<E>::print(x); }) + "]";
  }
};

// ---------------------------------------------------------------- validators
// Each returns "" when the value is possible, else what is wrong and what
// would be valid. They see the whole config for checks across keys.

template <class T>
std::string check_any(const T&, const RunConfig&) {
  return "";
}

std::string one_of(const std::string& v, const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), v) != choices.end()) return "";
  return str_cat("must be one of ", join<std::string>(choices, ", ", [](const std::string& s) { return s; }),
                 " (got ", quote(v), ")");
}

std::string check_task_name(const std::string& v, const RunConfig&) {
  return one_of(v, {"teacher", "kernel", "depth", "expand"});
}
std::string check_phase_number(int64_t v, const RunConfig&) {
  return v == 1 || v == 2 ? "" : str_cat("must be 1 or 2 (got ", v, ")");
}
std::string check_positive_int(int64_t v, const RunConfig&) {
  return v > 0 ? "" : str_cat("must be a positive integer (got ", v, ")");
}
std::string check_non_negative_int(int64_t v, const RunConfig&) {
  return v >= 0 ? "" : str_cat("must be >= 0 (got ", v, ")");
}
std::string check_finite_real(double v, const RunConfig&) {
  return std::isfinite(v) ? "" : str_cat("must be a finite number (got ", v, ")");
}
std::string check_positive_real(double v, const RunConfig&) {
  return std::isfinite(v) && v > 0 ? "" : str_cat("must be a number > 0 (got ", format_double(v), ")");
}
std::string check_non_negative_real(double v, const RunConfig&) {
  return std::isfinite(v) && v >= 0 ? "" : str_cat("must be a number >= 0 (got ", format_double(v), ")");
}
std::string check_closed_open_unit(double v, const RunConfig&) {
  return v >= 0 && v < 1 ? "" : str_cat("must be in [0, 1) (got ", format_double(v), ")");
}
std::string check_open_closed_unit(double v, const RunConfig&) {
  return v > 0 && v <= 1 ? "" : str_cat("must be in (0, 1] (got ", format_double(v), ")");
}
std::string check_non_empty(const std::string& v, const RunConfig&) {
  return trim(v).empty() ? "must not be empty" : "";
}
std::string check_lr_schedule(const std::string& v, const RunConfig&) { return one_of(v, {"cosine", "none"}); }
std::string check_optimizer(const std::string& v, const RunConfig&) { return one_of(v, {"sgd", "adam"}); }
std::string check_model_init_name(const std::string& v, const RunConfig&) { return one_of(v, {"he_fout", "he_fin"}); }
std::string check_distort_color_name(const std::string& v, const RunConfig&) {
  return one_of(v, {"tf", "torch", "None"});
}
std::string check_stage_width_name(const std::string& v, const RunConfig&) {
  return one_of(v, {"proxyless", "google"});
}
std::string check_kd_type_name(const std::string& v, const RunConfig&) { return one_of(v, {"ce", "mse"}); }
std::string check_dataset_name(const std::string& v, const RunConfig&) {
  return one_of(v, {"fashion_mnist", "imagenet"});
}
std::string check_device_name(const std::string& v, const RunConfig&) {
  static const std::regex re("cpu|cuda|cuda:[0-9]+");
  return std::regex_match(v, re) ? "" : str_cat("must be cpu, cuda or cuda:N (got ", quote(v), ")");
}
std::string check_valid_size_value(double v, const RunConfig&) {
  if (!(v >= 0)) return str_cat("must be >= 0: a count of images, a fraction below 1, or 0 (got ", format_double(v), ")");
  if (v >= 1 && v != std::floor(v))
    return str_cat("must be a whole number of images when >= 1, or a fraction below 1 (got ", format_double(v), ")");
  return "";
}
std::string check_no_decay(const std::string& v, const RunConfig&) {
  if (v.empty() || v == "None") return "";
  for (const std::string& part : split(v, '#'))
    if (trim(part).empty())
      return str_cat("must be name parts separated by '#', like \"bn#bias\", or None (got ", quote(v), ")");
  return "";
}
std::string check_scaling_mode(int64_t v, const RunConfig&) {
  return v == 1 ? ""
                : str_cat("must be 1 (got ", v,
                          "): the engine always uses the kernel transform matrices (the reference's -1 = none is not "
                          "supported)");
}
std::string check_width_mults(const std::vector<double>& v, const RunConfig&) {
  if (v.size() != 1) return str_cat("must hold exactly one width multiplier, like [1.0] (got ", v.size(), " values)");
  return std::isfinite(v[0]) && v[0] > 0 ? "" : str_cat("must be > 0 (got ", format_double(v[0]), ")");
}

std::string subset_of(const std::vector<int64_t>& v, const std::vector<int64_t>& allowed, const char* what) {
  const auto show = [](const std::vector<int64_t>& l) {
    return "{" + join<int64_t>(l, ", ", [](const int64_t& x) { return std::to_string(x); }) + "}";
  };
  if (v.empty()) return str_cat("must list at least one ", what, " from ", show(allowed));
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::find(allowed.begin(), allowed.end(), v[i]) == allowed.end())
      return str_cat(what, "s must be from ", show(allowed), " (got ", v[i], ")");
    if (std::find(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v[i]) != v.begin() + static_cast<std::ptrdiff_t>(i))
      return str_cat("lists ", what, " ", v[i], " twice");
  }
  return "";
}
std::string check_kernel_sizes(const std::vector<int64_t>& v, const RunConfig&) {
  return subset_of(v, {3, 5, 7}, "kernel size");
}
std::string check_expand_ratios(const std::vector<int64_t>& v, const RunConfig&) {
  return subset_of(v, {3, 4, 6}, "expand ratio");
}
std::string check_depths(const std::vector<int64_t>& v, const RunConfig&) { return subset_of(v, {2, 3, 4}, "depth"); }

std::string positive_unique(const std::vector<int64_t>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] <= 0) return str_cat("sizes must be positive (got ", v[i], ")");
    for (size_t j = 0; j < i; ++j)
      if (v[j] == v[i]) return str_cat("lists size ", v[i], " twice");
  }
  return "";
}
std::string check_positive_ints(const std::vector<int64_t>& v, const RunConfig&) { return positive_unique(v); }
std::string check_image_sizes(const std::vector<int64_t>& v, const RunConfig& c) {
  if (v.empty()) return "must list at least one image size";
  std::string bad = positive_unique(v);
  if (!bad.empty()) return bad;
  if (c.continuous_size)
    for (int64_t s : v)
      if (s % 4 != 0)
        return str_cat("sizes must be multiples of 4 when continuous_size is true (got ", s, "; try ", s / 4 * 4,
                       " or ", s / 4 * 4 + 4, ", or set continuous_size: false)");
  return "";
}

// ---------------------------------------------------------------- the table

struct Entry {
  std::string name, type, doc;
  std::function<void(RunConfig&, const YAML::Node&)> parse;  // throws Error(what was expected)
  std::function<std::string(const RunConfig&)> print;
  std::function<std::string(const RunConfig&)> check;
  std::function<bool(const RunConfig&, const RunConfig&)> equal;
};

template <class T>
Entry make_entry(const char* name, T RunConfig::*member, const char* doc,
                 std::string (*check)(const T&, const RunConfig&)) {
  Entry e;
  e.name = name;
  e.type = Codec<T>::type();
  e.doc = doc;
  e.parse = [member](RunConfig& c, const YAML::Node& n) { c.*member = Codec<T>::parse(n); };
  e.print = [member](const RunConfig& c) { return Codec<T>::print(c.*member); };
  e.check = [member, check](const RunConfig& c) { return check(c.*member, c); };
  e.equal = [member](const RunConfig& a, const RunConfig& b) { return a.*member == b.*member; };
  return e;
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = [] {
    std::vector<Entry> t;
#define OFA_RUN_CONFIG_ENTRY(type, name, def, check, doc)                                       \
  t.push_back(make_entry<type>(#name, &RunConfig::name, doc, [](const type& v, const RunConfig& c) { \
    return check_##check(v, c);                                                                  \
  }));
    OFA_RUN_CONFIG_KEYS(OFA_RUN_CONFIG_ENTRY)
#undef OFA_RUN_CONFIG_ENTRY
    return t;
  }();
  return table;
}

const Entry* find_entry(const std::string& name) {
  for (const Entry& e : entries())
    if (e.name == name) return &e;
  return nullptr;
}

std::string unknown_key_message(const std::string& name) {
  // The reference's command-line spelling (--n-epochs) maps onto a key directly.
  std::string norm = name;
  while (!norm.empty() && norm[0] == '-') norm.erase(0, 1);
  std::replace(norm.begin(), norm.end(), '-', '_');
  std::transform(norm.begin(), norm.end(), norm.begin(), [](unsigned char ch) { return std::tolower(ch); });
  const Entry* best = nullptr;
  size_t best_d = 0;
  for (const Entry& e : entries()) {
    size_t d = edit_distance(norm, e.name);
    if (!best || d < best_d) best = &e, best_d = d;
  }
  std::string msg = str_cat("unknown key '", name, "'");
  if (best_d <= std::max<size_t>(2, best->name.size() / 3))
    return str_cat(msg, "; did you mean '", best->name, "'?");
  return str_cat(msg, " (the closest valid key is '", best->name,
                 "'; every key is listed with its meaning in ofa/run_config.h)");
}

// Where each key's value came from, for validation messages.
using Origins = std::map<std::string, std::string>;

void set_from_node(RunConfig& cfg, Origins& origins, const std::string& key, const std::string& key_where,
                   const YAML::Node& value, const std::string& where) {
  const Entry* e = find_entry(key);
  if (!e) throw Error(str_cat(key_where, ": ", unknown_key_message(key)));
  try {
    e->parse(cfg, value);
  } catch (const Error& err) {
    throw Error(str_cat(where, ": key '", key, "' (", e->type, "): ", err.what()));
  }
  cfg.explicit_keys.insert(key);
  origins[key] = where;
}

void validate_with(const RunConfig& cfg, const Origins& origins, const std::string& fallback) {
  for (const Entry& e : entries()) {
    const std::string bad = e.check(cfg);
    if (bad.empty()) continue;
    auto it = origins.find(e.name);
    const std::string where = it != origins.end() ? it->second : fallback;
    throw Error(str_cat(where, ": key '", e.name, "': ", bad));
  }
}

// Applies one mapping's keys; `skip` names keys handled by the caller.
void apply_map(RunConfig& cfg, Origins& origins, const YAML::Node& root, const std::string& source, bool is_file,
               const std::set<std::string>& skip) {
  if (!root.IsDefined() || root.IsNull()) return;
  if (!root.IsMap())
    throw Error(str_cat(where_of(root, source, is_file),
                        ": a run configuration must be a YAML mapping of key: value lines, got ", describe(root)));
  std::map<std::string, std::string> seen;
  for (const auto& kv : root) {
    const std::string where = where_of(kv.first, source, is_file);
    if (!kv.first.IsScalar()) throw Error(str_cat(where, ": keys must be plain names, got ", describe(kv.first)));
    const std::string key = kv.first.Scalar();
    auto dup = seen.find(key);
    if (dup != seen.end()) throw Error(str_cat(where, ": key '", key, "' is given twice (first at ", dup->second, ")"));
    seen[key] = where;
    if (skip.count(key)) continue;
    // A null value has no position of its own (yaml-cpp marks the next line): use its key's.
    const YAML::Node& at = kv.second.IsNull() ? kv.first : kv.second;
    set_from_node(cfg, origins, key, where, kv.second, where_of(at, source, is_file));
  }
}

// layers: the mappings applied in order (the file, then a stage's keys).
RunConfig from_layers(const std::vector<YAML::Node>& layers, const std::string& source, bool is_file,
                      const std::vector<std::string>& overrides, const std::set<std::string>& skip,
                      const std::function<void(RunConfig&)>& before_defaults = {}) {
  RunConfig cfg;
  Origins origins;
  for (const YAML::Node& root : layers) apply_map(cfg, origins, root, source, is_file, skip);
  for (const std::string& ov : overrides) {
    const std::string where = "--set " + ov;
    const size_t eq = ov.find('=');
    if (eq == std::string::npos) throw Error(str_cat(where, ": expected key=value, like --set n_epochs=3"));
    const std::string key = trim(ov.substr(0, eq));
    YAML::Node value;
    try {
      value = YAML::Load(ov.substr(eq + 1));
    } catch (const YAML::Exception& ex) {
      throw Error(str_cat(where, ": the value is not valid YAML: ", ex.msg));
    }
    set_from_node(cfg, origins, key, where, value, where);
  }
  // Task and phase pick the table row, so they must be right first.
  for (const char* key : {"task", "phase"}) {
    const std::string bad = find_entry(key)->check(cfg);
    if (!bad.empty()) {
      auto it = origins.find(key);
      throw Error(str_cat(it != origins.end() ? it->second : source, ": key '", key, "': ", bad));
    }
  }
  if (before_defaults) before_defaults(cfg);
  apply_task_defaults(cfg);
  validate_with(cfg, origins, source + " (default value)");
  return cfg;
}

YAML::Node parse_yaml(const std::string& yaml, const std::string& source_name) {
  try {
    return YAML::Load(yaml);
  } catch (const YAML::Exception& ex) {
    throw Error(str_cat(source_name, ":", ex.mark.line + 1, ":", ex.mark.column + 1, ": YAML syntax error: ", ex.msg));
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  OFA_CHECK(in, "cannot open run configuration '", path, "' (check the path; configs/ holds examples)");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

// ---------------------------------------------------------------- public API

bool RunConfig::operator==(const RunConfig& o) const {
  for (const Entry& e : entries())
    if (!e.equal(*this, o)) return false;
  return true;
}

const std::vector<RunConfigKeyInfo>& run_config_keys() {
  static const std::vector<RunConfigKeyInfo> keys = [] {
    std::vector<RunConfigKeyInfo> out;
    RunConfig def;
    for (const Entry& e : entries()) out.push_back({e.name, e.type, e.doc, e.print(def)});
    return out;
  }();
  return keys;
}

RunConfig run_config_from_yaml_string(const std::string& yaml, const std::string& source_name,
                                      const std::vector<std::string>& overrides) {
  const YAML::Node root = parse_yaml(yaml, source_name);
  if (root.IsMap() && root["stages"].IsDefined())
    throw Error(str_cat(where_of(root["stages"], source_name, true),
                        ": key 'stages' makes this file a recipe of several runs; load it as a recipe (ofa_train "
                        "--config), or pick one stage with --task/--phase"));
  return from_layers({root}, source_name, true, overrides, {});
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return run_config_from_yaml_string(read_text_file(path), path, overrides);
}

std::string stage_id(const std::string& task, int64_t phase) {
  if (task == "depth" || task == "expand") return str_cat(task, "_phase", phase);
  return task;
}

std::string recipe_root_path(const RunConfig& base) {
  return base.explicit_keys.count("path") ? base.path : std::string("runs/ofa");
}

RecipeConfig recipe_config_from_yaml_string(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides) {
  const YAML::Node root = parse_yaml(yaml, source_name);
  RecipeConfig r;
  const YAML::Node stages = root.IsMap() ? root["stages"] : YAML::Node();
  r.has_stages = stages.IsDefined();
  r.base = from_layers({root}, source_name, true, overrides, {"stages"});
  if (!r.has_stages) {
    r.stages.push_back({stage_id(r.base.task, r.base.phase), r.base});
    return r;
  }
  const std::string at = where_of(stages, source_name, true);
  if (!stages.IsSequence() || stages.size() == 0)
    throw Error(str_cat(at, ": key 'stages' must be a list of mappings, each with a task (teacher | kernel | depth | "
                            "expand), a phase for depth/expand, and the keys that differ in that stage; got ",
                        describe(stages)));
  // The stage folders go under the recipe's path; the task table's per-task
  // paths do not apply.
  const std::string root_path = recipe_root_path(r.base);
  std::map<std::string, std::string> seen;
  for (const YAML::Node& st : stages) {
    const std::string where = where_of(st, source_name, true);
    if (!st.IsMap()) throw Error(str_cat(where, ": a stage must be a mapping like {task: depth, phase: 1}, got ", describe(st)));
    if (!st["task"].IsDefined())
      throw Error(str_cat(where, ": the stage names no task (add task: teacher | kernel | depth | expand)"));
    const bool own_path = st["path"].IsDefined();
    std::string id;
    RunConfig cfg = from_layers({root, st}, source_name, true, overrides, {"stages"}, [&](RunConfig& c) {
      id = stage_id(c.task, c.phase);
      if (!own_path) {
        c.path = root_path + "/" + id;
        c.explicit_keys.insert("path");
      }
    });
    auto dup = seen.find(id);
    if (dup != seen.end()) throw Error(str_cat(where, ": stage '", id, "' is listed twice (first at ", dup->second, ")"));
    seen[id] = where;
    r.stages.push_back({id, std::move(cfg)});
  }
  return r;
}

RecipeConfig load_recipe_config(const std::string& path, const std::vector<std::string>& overrides) {
  return recipe_config_from_yaml_string(read_text_file(path), path, overrides);
}

std::vector<std::pair<std::string, std::string>> run_config_values(const RunConfig& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Entry& e : entries()) out.emplace_back(e.name, e.print(cfg));
  return out;
}

std::string run_config_to_yaml(const RunConfig& cfg) {
  std::string out =
      "# OFA run configuration: every key with its effective value (ofa/run_config.h documents them).\n";
  for (const Entry& e : entries()) {
    std::string line = str_cat(e.name, ": ", e.print(cfg));
    if (line.size() < 44) line.resize(44, ' ');  // align the comments
    out += str_cat(line, "  # ", e.doc, "\n");
  }
  return out;
}

void validate_run_config(const RunConfig& cfg) { validate_with(cfg, {}, "run configuration"); }

void apply_task_defaults(RunConfig& cfg) {
  struct Row {
    int64_t n_epochs;
    double base_lr;
    int64_t warmup_epochs;
    double warmup_lr;
    std::vector<int64_t> ks, expand, depth;
    int64_t dynamic_batch_size;
    std::string path;
  };
  // train_ofa_net.py's table; paths follow its exp/... names under runs/ofa.
  Row row;
  const std::string phase = str_cat("phase", cfg.phase);
  OFA_CHECK(cfg.task == "kernel" || cfg.task == "teacher" || cfg.phase == 1 || cfg.phase == 2, "run configuration: key 'phase' must be 1 or 2 (got ",
            cfg.phase, ")");
  if (cfg.task == "teacher") {
    // The full network K7-E6-D4 trained alone, as the OFA paper's: 180
    // epochs, lr 2.6 for 32 GPUs x 64 images (2.6 / 32 per rank), 5 of warmup.
    row = {180, 2.6 / 32, 5, -1, {7}, {6}, {4}, 1, "runs/ofa/teacher"};
  } else if (cfg.task == "kernel") {
    row = {120, 3e-2, 5, -1, {3, 5, 7}, {6}, {4}, 1, "runs/ofa/normal2kernel"};
  } else if (cfg.task == "depth") {
    row = cfg.phase == 1 ? Row{25, 2.5e-3, 0, -1, {3, 5, 7}, {6}, {3, 4}, 2, ""}
                         : Row{120, 7.5e-3, 5, -1, {3, 5, 7}, {6}, {2, 3, 4}, 2, ""};
    row.path = "runs/ofa/kernel2kernel_depth/" + phase;
  } else if (cfg.task == "expand") {
    row = cfg.phase == 1 ? Row{25, 2.5e-3, 0, -1, {3, 5, 7}, {4, 6}, {2, 3, 4}, 4, ""}
                         : Row{120, 7.5e-3, 5, -1, {3, 5, 7}, {3, 4, 6}, {2, 3, 4}, 4, ""};
    row.path = "runs/ofa/kernel_depth2kernel_depth_width/" + phase;
  } else {
    throw Error(str_cat("run configuration: key 'task': ", one_of(cfg.task, {"teacher", "kernel", "depth", "expand"})));
  }
  const auto fill = [&cfg](const char* key, auto& member, const auto& value) {
    if (!cfg.explicit_keys.count(key)) member = value;
  };
  fill("n_epochs", cfg.n_epochs, row.n_epochs);
  fill("base_lr", cfg.base_lr, row.base_lr);
  fill("warmup_epochs", cfg.warmup_epochs, row.warmup_epochs);
  fill("warmup_lr", cfg.warmup_lr, row.warmup_lr);
  fill("ks_list", cfg.ks_list, row.ks);
  fill("expand_list", cfg.expand_list, row.expand);
  fill("depth_list", cfg.depth_list, row.depth);
  fill("dynamic_batch_size", cfg.dynamic_batch_size, row.dynamic_batch_size);
  fill("path", cfg.path, row.path);
}

std::vector<std::string> no_decay_key_list(const RunConfig& cfg) {
  std::vector<std::string> out;
  if (cfg.no_decay_keys.empty() || cfg.no_decay_keys == "None") return out;
  for (const std::string& part : split(cfg.no_decay_keys, '#')) out.push_back(trim(part));
  return out;
}

double init_lr(const RunConfig& cfg, int64_t world_size) {
  OFA_CHECK(world_size >= 1, "init_lr: world_size must be >= 1 (got ", world_size, ")");
  return cfg.base_lr * static_cast<double>(world_size);
}

double effective_warmup_lr(const RunConfig& cfg) { return cfg.warmup_lr < 0 ? cfg.base_lr : cfg.warmup_lr; }

bool use_nesterov(const RunConfig& cfg) { return !cfg.no_nesterov; }

std::vector<int64_t> validation_image_sizes(const RunConfig& cfg) {
  if (!cfg.valid_image_size.empty()) return cfg.valid_image_size;
  if (cfg.image_size.size() == 1) return {224};
  return {160, 224};
}

}  // namespace ofa
