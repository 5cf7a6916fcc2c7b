#include "nn/mobilenet_v3.h"

#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "engine/autograd.h"

namespace ofa::nn {

int64_t make_divisible(double v, int64_t divisor) {
  int64_t nv = std::max<int64_t>(divisor, static_cast<int64_t>(v + static_cast<double>(divisor) / 2.0) / divisor * divisor);
  if (static_cast<double>(nv) < 0.9 * v) nv += divisor;
  return nv;
}

int64_t round_make_divisible(int64_t in, double expand_ratio) {
  // The reference rounds a float32 tensor (torch.round: half to even).
  const float r = std::nearbyint(static_cast<float>(static_cast<double>(in) * expand_ratio));
  return make_divisible(static_cast<double>(r), 8);
}

int64_t min_divisible_value(int64_t n1, int64_t v1) {
  if (v1 >= n1) return n1;
  while (n1 % v1 != 0) --v1;
  return v1;
}

void check_activation(const std::string& act, const char* where) {
  OFA_CHECK(act.empty() || act == "none" || act == "relu" || act == "relu6" || act == "h_swish" || act == "h_sigmoid",
            where, ": unsupported activation '", act, "' (use relu, relu6, h_swish, h_sigmoid or none)");
}

Tensor apply_activation(const std::string& act, const Tensor& x) {
  switch (act_of(act)) {
    case Act::Relu: return relu(x);
    case Act::HSwish: return hswish(x);
    case Act::Relu6: return relu6(x);
    case Act::HSigmoid: return hsigmoid(x);
    case Act::Identity: return x;
  }
  return x;
}

Act act_of(const std::string& act) {
  if (act == "relu") return Act::Relu;
  if (act == "h_swish") return Act::HSwish;
  if (act == "relu6") return Act::Relu6;
  if (act == "h_sigmoid") return Act::HSigmoid;
  check_activation(act, "act_of");
  return Act::Identity;
}

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride) {
  return (in + 2 * (kernel / 2) - kernel) / stride + 1;
}

namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Integral ratios print as the reference's ints (6, not 6.0).
json number(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return json(static_cast<int64_t>(v));
  return json(v);
}

json act_json(const std::string& act) { return act.empty() || act == "none" ? json(nullptr) : json(act); }
std::string act_from(const json& j) { return j.is_null() ? std::string() : j.get<std::string>(); }

template <class T>
T get_or(const json& c, const char* key, T dflt) {
  auto it = c.find(key);
  if (it == c.end() || it->is_null()) return dflt;
  return it->get<T>();
}

std::string name_of(const json& c, const char* where) {
  OFA_CHECK(c.is_object() && c.contains("name"), where, ": the layer config has no \"name\": ", c.dump());
  return c["name"].get<std::string>();
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

}  // namespace

void ModuleList::append(std::shared_ptr<Module> m) { register_module(std::to_string(n_++), std::move(m)); }

// ---------------------------------------------------------------- SE

SEModule::SEModule(int64_t c, int64_t r, Generator* g) : channel(c), reduction(r) {
  mid = make_divisible(static_cast<double>(c / r), 8);
  fc = register_module("fc", std::make_shared<SEFc>());
  fc->reduce = fc->register_module("reduce", std::make_shared<Conv2d>(c, mid, 1, 1, 1, true, g));
  fc->expand = fc->register_module("expand", std::make_shared<Conv2d>(mid, c, 1, 1, 1, true, g));
}

Tensor se_forward(const Tensor& x, const Tensor& rw, const Tensor& rb, const Tensor& ew, const Tensor& eb) {
  Tensor y = global_avg_pool2d(x);
  y = relu(conv2d(y, rw, rb, Conv2dArgs{}));
  y = hsigmoid(conv2d(y, ew, eb, Conv2dArgs{}));
  return mul(x, y);
}

Tensor SEModule::forward(const Tensor& x) const {
  OFA_CHECK(x.dim() == 4 && x.size(1) == channel, "SEModule: input ", shape_str(x.shape()), " should have ", channel,
            " channels");
  return se_forward(x, fc->reduce->weight, fc->reduce->bias, fc->expand->weight, fc->expand->bias);
}

// ---------------------------------------------------------------- ConvLayer

ConvLayer::ConvLayer(int64_t in, int64_t out, const ConvLayerOptions& o, Generator* g)
    : in_channels(in), out_channels(out), opt(o) {
  OFA_CHECK(opt.ops_order == "weight_bn_act", "ConvLayer: only ops_order weight_bn_act is supported, got '",
            opt.ops_order, "'");
  OFA_CHECK(opt.dilation == 1, "ConvLayer: dilation ", opt.dilation, " is not supported (only 1)");
  OFA_CHECK(opt.dropout_rate == 0.0, "ConvLayer: dropout_rate ", opt.dropout_rate,
            " (Dropout2d before the conv) is not supported; use 0");
  OFA_CHECK(!(opt.has_shuffle && opt.groups > 1), "ConvLayer: channel shuffle is not supported");
  OFA_CHECK(opt.kernel_size % 2 == 1, "ConvLayer: kernel_size ", opt.kernel_size, " must be odd");
  check_activation(opt.act_func, "ConvLayer");
  conv = register_module("conv", std::make_shared<Conv2d>(in, out, opt.kernel_size, opt.stride,
                                                          min_divisible_value(in, opt.groups), opt.bias, g));
  if (opt.use_bn) bn = register_module("bn", std::make_shared<BatchNorm2d>(out));
  if (opt.use_se) se = register_module("se", std::make_shared<SEModule>(out, SEModule::kReduction, g));
}

std::shared_ptr<ConvLayer> ConvLayer::build_from_config(const json& c, Generator* g) {
  OFA_CHECK(name_of(c, "ConvLayer::build_from_config") == "ConvLayer",
            "ConvLayer::build_from_config: config names ", c["name"].dump(), ", not ConvLayer");
  ConvLayerOptions o;
  o.kernel_size = get_or<int64_t>(c, "kernel_size", 3);
  o.stride = get_or<int64_t>(c, "stride", 1);
  o.dilation = get_or<int64_t>(c, "dilation", 1);
  o.groups = get_or<int64_t>(c, "groups", 1);
  o.bias = get_or<bool>(c, "bias", false);
  o.has_shuffle = get_or<bool>(c, "has_shuffle", false);
  o.use_se = get_or<bool>(c, "use_se", false);
  o.use_bn = get_or<bool>(c, "use_bn", true);
  o.act_func = c.contains("act_func") ? act_from(c["act_func"]) : "relu";
  o.dropout_rate = get_or<double>(c, "dropout_rate", 0.0);
  o.ops_order = get_or<std::string>(c, "ops_order", "weight_bn_act");
  return std::make_shared<ConvLayer>(c.at("in_channels").get<int64_t>(), c.at("out_channels").get<int64_t>(), o, g);
}

Tensor ConvLayer::forward(const Tensor& x) {
  Tensor y = conv->forward(x);
  y = bn ? bn->forward(y, act_of(opt.act_func)) : apply_activation(opt.act_func, y);
  if (se) y = se->forward(y);
  return y;
}

json ConvLayer::config() const {
  return json{{"name", "ConvLayer"},          {"kernel_size", opt.kernel_size},
              {"stride", opt.stride},         {"dilation", opt.dilation},
              {"groups", opt.groups},         {"bias", opt.bias},
              {"has_shuffle", opt.has_shuffle}, {"use_se", opt.use_se},
              {"in_channels", in_channels},   {"out_channels", out_channels},
              {"use_bn", opt.use_bn},         {"act_func", act_json(opt.act_func)},
              {"dropout_rate", number(opt.dropout_rate)}, {"ops_order", opt.ops_order}};
}

std::string ConvLayer::module_str() const {
  std::string s = fmt("%dx%d_%s", static_cast<int>(opt.kernel_size), static_cast<int>(opt.kernel_size),
                      opt.groups == 1 ? "Conv" : "GroupConv");
  s += fmt("_O%d", static_cast<int>(out_channels));
  if (opt.use_se) s = "SE_" + s;
  s += "_" + upper(opt.act_func.empty() ? "none" : opt.act_func);
  if (opt.use_bn) s += "_BN";
  return s;
}

// ---------------------------------------------------------------- MBConvLayer

Tensor ConvBnAct::forward(const Tensor& x) {
  Tensor y = bn->forward(conv->forward(x), act_of(act));
  if (se) y = se->forward(y);
  return y;
}

MBConvLayer::MBConvLayer(int64_t in, int64_t out, int64_t k, int64_t s, double e, int64_t mid, const std::string& act,
                         bool se, Generator* g)
    : in_channels(in), out_channels(out), kernel_size(k), stride(s), mid_channels(mid), expand_ratio(e),
      act_func(act), use_se(se) {
  check_activation(act, "MBConvLayer");
  OFA_CHECK(k % 2 == 1, "MBConvLayer: kernel_size ", k, " must be odd");
  const int64_t f = feature_dim();
  OFA_CHECK(f > 0, "MBConvLayer: middle width ", f, " (in ", in, ", expand ", e, ", mid ", mid, ") must be positive");
  if (expand_ratio != 1.0) {
    inverted_bottleneck = register_module("inverted_bottleneck", std::make_shared<ConvBnAct>());
    inverted_bottleneck->conv = inverted_bottleneck->register_module("conv", std::make_shared<Conv2d>(in, f, 1, 1, 1, false, g));
    inverted_bottleneck->bn = inverted_bottleneck->register_module("bn", std::make_shared<BatchNorm2d>(f));
    inverted_bottleneck->act = act;
  }
  depth_conv = register_module("depth_conv", std::make_shared<ConvBnAct>());
  depth_conv->conv = depth_conv->register_module("conv", std::make_shared<Conv2d>(f, f, k, s, f, false, g));
  depth_conv->bn = depth_conv->register_module("bn", std::make_shared<BatchNorm2d>(f));
  depth_conv->act = act;
  if (use_se) depth_conv->se = depth_conv->register_module("se", std::make_shared<SEModule>(f, SEModule::kReduction, g));
  point_linear = register_module("point_linear", std::make_shared<ConvBnAct>());
  point_linear->conv = point_linear->register_module("conv", std::make_shared<Conv2d>(f, out, 1, 1, 1, false, g));
  point_linear->bn = point_linear->register_module("bn", std::make_shared<BatchNorm2d>(out));
}

int64_t MBConvLayer::feature_dim() const {
  // Python's round(): half to even.
  return mid_channels >= 0 ? mid_channels
                           : static_cast<int64_t>(std::nearbyint(static_cast<double>(in_channels) * expand_ratio));
}

std::shared_ptr<MBConvLayer> MBConvLayer::build_from_config(const json& c, Generator* g) {
  const std::string n = name_of(c, "MBConvLayer::build_from_config");
  OFA_CHECK(n == "MBConvLayer" || n == "MBInvertedConvLayer", "MBConvLayer::build_from_config: config names '", n,
            "', not MBConvLayer");
  OFA_CHECK(get_or<int64_t>(c, "groups", -1) == -1, "MBConvLayer: grouped depth convs (groups ", c["groups"].dump(),
            ") are not supported; use null");
  return std::make_shared<MBConvLayer>(
      c.at("in_channels").get<int64_t>(), c.at("out_channels").get<int64_t>(), get_or<int64_t>(c, "kernel_size", 3),
      get_or<int64_t>(c, "stride", 1), get_or<double>(c, "expand_ratio", 6.0), get_or<int64_t>(c, "mid_channels", -1),
      c.contains("act_func") ? act_from(c["act_func"]) : "relu6", get_or<bool>(c, "use_se", false), g);
}

Tensor MBConvLayer::forward(const Tensor& x) {
  Tensor y = inverted_bottleneck ? inverted_bottleneck->forward(x) : x;
  y = depth_conv->forward(y);
  return point_linear->forward(y);
}

json MBConvLayer::config() const {
  return json{{"name", "MBConvLayer"},
              {"in_channels", in_channels},
              {"out_channels", out_channels},
              {"kernel_size", kernel_size},
              {"stride", stride},
              {"expand_ratio", number(expand_ratio)},
              {"mid_channels", mid_channels >= 0 ? json(mid_channels) : json(nullptr)},
              {"act_func", act_json(act_func)},
              {"use_se", use_se},
              {"groups", nullptr}};
}

std::string MBConvLayer::module_str() const {
  // The reference prints the ratio with %d (truncating), or mid // in.
  const int64_t e = mid_channels >= 0 ? mid_channels / in_channels : static_cast<int64_t>(expand_ratio);
  std::string s = fmt("%dx%d_MBConv%d_%s", static_cast<int>(kernel_size), static_cast<int>(kernel_size),
                      static_cast<int>(e), upper(act_func.empty() ? "none" : act_func).c_str());
  if (use_se) s = "SE_" + s;
  s += fmt("_O%d", static_cast<int>(out_channels));
  return s + "_BN";
}

// ---------------------------------------------------------------- ResidualBlock

ResidualBlock::ResidualBlock(std::shared_ptr<Layer> c, bool identity, int64_t sc)
    : conv(std::move(c)), identity_shortcut(identity), shortcut_channels(sc) {
  OFA_CHECK(conv != nullptr, "ResidualBlock: conv is null");
  register_module("conv", conv);
}

std::shared_ptr<ResidualBlock> ResidualBlock::build_from_config(const json& c, Generator* g) {
  OFA_CHECK(c.is_object(), "ResidualBlock::build_from_config: config is not an object: ", c.dump());
  const json& cc = c.contains("conv") ? c["conv"] : c.at("mobile_inverted_conv");
  OFA_CHECK(!cc.is_null(), "ResidualBlock: a block without conv (a pure shortcut) is not supported");
  auto conv = MBConvLayer::build_from_config(cc, g);
  bool identity = false;
  int64_t sc = 0;
  if (c.contains("shortcut") && !c["shortcut"].is_null()) {
    const json& s = c["shortcut"];
    OFA_CHECK(name_of(s, "ResidualBlock") == "IdentityLayer", "ResidualBlock: shortcut '", s["name"].dump(),
              "' is not supported (only IdentityLayer or null)");
    identity = true;
    sc = s.at("in_channels").get<int64_t>();
  }
  return std::make_shared<ResidualBlock>(conv, identity, sc);
}

Tensor ResidualBlock::forward(const Tensor& x) {
  Tensor y = conv->forward(x);
  return identity_shortcut ? add(y, x) : y;
}

json ResidualBlock::config() const {
  json sc = nullptr;
  if (identity_shortcut)
    sc = json{{"name", "IdentityLayer"}, {"in_channels", shortcut_channels}, {"out_channels", shortcut_channels},
              {"use_bn", false},         {"act_func", nullptr},             {"dropout_rate", 0},
              {"ops_order", "weight_bn_act"}};
  return json{{"name", "ResidualBlock"}, {"conv", conv->config()}, {"shortcut", sc}};
}

std::string ResidualBlock::module_str() const {
  return "(" + conv->module_str() + ", " + (identity_shortcut ? "Identity" : "None") + ")";
}

// ---------------------------------------------------------------- LinearLayer

LinearLayer::LinearLayer(int64_t in, int64_t out, bool b, double p, Generator* g)
    : in_features(in), out_features(out), bias(b), dropout_rate(p) {
  OFA_CHECK(p >= 0.0 && p < 1.0, "LinearLayer: dropout_rate ", p, " must be in [0, 1)");
  linear = register_module("linear", std::make_shared<Linear>(in, out, b, g));
}

std::shared_ptr<LinearLayer> LinearLayer::build_from_config(const json& c, Generator* g) {
  OFA_CHECK(name_of(c, "LinearLayer::build_from_config") == "LinearLayer", "LinearLayer::build_from_config: config names ",
            c["name"].dump(), ", not LinearLayer");
  OFA_CHECK(!get_or<bool>(c, "use_bn", false), "LinearLayer: use_bn is not supported");
  OFA_CHECK(!c.contains("act_func") || c["act_func"].is_null(), "LinearLayer: an activation (",
            c["act_func"].dump(), ") is not supported");
  return std::make_shared<LinearLayer>(c.at("in_features").get<int64_t>(), c.at("out_features").get<int64_t>(),
                                       get_or<bool>(c, "bias", true), get_or<double>(c, "dropout_rate", 0.0), g);
}

Tensor LinearLayer::forward(const Tensor& x) {
  Tensor y = dropout_rate > 0.0 ? dropout(x, dropout_rate, is_training(), dropout_generator) : x;
  return linear->forward(y);
}

json LinearLayer::config() const {
  return json{{"name", "LinearLayer"},     {"in_features", in_features}, {"out_features", out_features},
              {"bias", bias},              {"use_bn", false},            {"act_func", nullptr},
              {"dropout_rate", number(dropout_rate)}, {"ops_order", "weight_bn_act"}};
}

std::string LinearLayer::module_str() const {
  return fmt("%dx%d_Linear", static_cast<int>(in_features), static_cast<int>(out_features));
}

// ---------------------------------------------------------------- net info

namespace {

struct Counter {
  NetInfo info;
  int64_t h = 0, w = 0;
  void conv(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t groups, bool bias) {
    h = conv_out_size(h, k, stride);
    w = conv_out_size(w, k, stride);
    info.params += cout * (cin / groups) * k * k + (bias ? cout : 0);
    info.macs += cin * (cout * h * w) * k * k / groups;
  }
  void bn(int64_t c) { info.params += 2 * c; }
  void se(int64_t c) {
    const int64_t mid = make_divisible(static_cast<double>(c / SEModule::kReduction), 8);
    info.params += c * mid + mid + mid * c + c;
    info.macs += c * mid + mid * c;  // on the pooled 1x1 map
  }
  void conv_layer(const json& c) {
    const int64_t in = c.at("in_channels").get<int64_t>(), out = c.at("out_channels").get<int64_t>();
    conv(in, out, get_or<int64_t>(c, "kernel_size", 3), get_or<int64_t>(c, "stride", 1),
         min_divisible_value(in, get_or<int64_t>(c, "groups", 1)), get_or<bool>(c, "bias", false));
    if (get_or<bool>(c, "use_bn", true)) bn(out);
    if (get_or<bool>(c, "use_se", false)) se(out);
  }
  void mbconv(const json& c) {
    const int64_t in = c.at("in_channels").get<int64_t>(), out = c.at("out_channels").get<int64_t>();
    const double e = get_or<double>(c, "expand_ratio", 6.0);
    const int64_t mid = get_or<int64_t>(c, "mid_channels", -1);
    const int64_t f = mid >= 0 ? mid : static_cast<int64_t>(std::nearbyint(static_cast<double>(in) * e));
    const int64_t k = get_or<int64_t>(c, "kernel_size", 3);
    if (e != 1.0) {
      conv(in, f, 1, 1, 1, false);
      bn(f);
    }
    conv(f, f, k, get_or<int64_t>(c, "stride", 1), f, false);
    bn(f);
    if (get_or<bool>(c, "use_se", false)) se(f);
    conv(f, out, 1, 1, 1, false);
    bn(out);
  }
};

}  // namespace

NetInfo net_info_from_config(const json& cfg, int64_t resolution) {
  OFA_CHECK(resolution > 0, "net_info_from_config: resolution ", resolution, " must be positive");
  Counter ct;
  ct.h = ct.w = resolution;
  ct.conv_layer(cfg.at("first_conv"));
  for (const auto& b : cfg.at("blocks")) ct.mbconv(b.contains("conv") ? b["conv"] : b.at("mobile_inverted_conv"));
  ct.conv_layer(cfg.at("final_expand_layer"));
  ct.h = ct.w = 1;  // global average pooling
  ct.conv_layer(cfg.at("feature_mix_layer"));
  const json& cl = cfg.at("classifier");
  const int64_t in = cl.at("in_features").get<int64_t>(), out = cl.at("out_features").get<int64_t>();
  ct.info.params += in * out + (get_or<bool>(cl, "bias", true) ? out : 0);
  ct.info.macs += in * out;
  return ct.info;
}

// ---------------------------------------------------------------- MobileNetV3

MobileNetV3::MobileNetV3(std::shared_ptr<ConvLayer> fc, std::vector<std::shared_ptr<ResidualBlock>> bl,
                         std::shared_ptr<ConvLayer> fe, std::shared_ptr<ConvLayer> fm, std::shared_ptr<LinearLayer> cl)
    : first_conv(std::move(fc)), blocks(std::move(bl)), final_expand_layer(std::move(fe)),
      feature_mix_layer(std::move(fm)), classifier(std::move(cl)) {
  register_module("first_conv", first_conv);
  auto list = register_module("blocks", std::make_shared<ModuleList>());
  for (auto& b : blocks) list->append(b);
  register_module("final_expand_layer", final_expand_layer);
  register_module("feature_mix_layer", feature_mix_layer);
  register_module("classifier", classifier);
}

std::shared_ptr<MobileNetV3> MobileNetV3::build_from_config(const json& c, Generator* g) {
  OFA_CHECK(c.is_object(), "MobileNetV3::build_from_config: config is not an object");
  auto fc = ConvLayer::build_from_config(c.at("first_conv"), g);
  std::vector<std::shared_ptr<ResidualBlock>> blocks;
  for (const auto& b : c.at("blocks")) blocks.push_back(ResidualBlock::build_from_config(b, g));
  auto fe = ConvLayer::build_from_config(c.at("final_expand_layer"), g);
  auto fm = ConvLayer::build_from_config(c.at("feature_mix_layer"), g);
  auto cl = LinearLayer::build_from_config(c.at("classifier"), g);
  auto net = std::make_shared<MobileNetV3>(fc, blocks, fe, fm, cl);
  double momentum = 0.1, eps = 1e-5;
  if (c.contains("bn") && !c["bn"].is_null()) {
    const json& bn = c["bn"];
    OFA_CHECK(!bn.contains("ws_eps") || bn["ws_eps"].is_null(), "MobileNetV3: weight standardisation (ws_eps ",
              bn["ws_eps"].dump(), ") is not supported");
    OFA_CHECK(!bn.contains("gn_channel_per_group") || bn["gn_channel_per_group"].is_null(),
              "MobileNetV3: group norm is not supported");
    momentum = get_or<double>(bn, "momentum", 0.1);
    eps = get_or<double>(bn, "eps", 1e-5);
  }
  net->set_bn_param(momentum, eps);
  return net;
}

Tensor MobileNetV3::forward(const Tensor& x) {
  Tensor y = first_conv->forward(x);
  for (auto& b : blocks) y = b->forward(y);
  y = final_expand_layer->forward(y);
  y = global_avg_pool2d(y);
  y = feature_mix_layer->forward(y);
  y = y.reshape({y.size(0), -1});
  return classifier->forward(y);
}

json MobileNetV3::config() const {
  json bl = json::array();
  for (const auto& b : blocks) bl.push_back(b->config());
  return json{{"name", "MobileNetV3"},
              {"bn", get_bn_param()},
              {"first_conv", first_conv->config()},
              {"blocks", bl},
              {"final_expand_layer", final_expand_layer->config()},
              {"feature_mix_layer", feature_mix_layer->config()},
              {"classifier", classifier->config()}};
}

std::string MobileNetV3::module_str() const {
  std::string s = first_conv->module_str() + "\n";
  for (const auto& b : blocks) s += b->module_str() + "\n";
  s += final_expand_layer->module_str() + "\n";
  s += "MyGlobalAvgPool2d(keep_dim=True)\n";
  s += feature_mix_layer->module_str() + "\n";
  return s + classifier->module_str();
}

namespace {
std::vector<BatchNorm2d*> all_bns(Module& m) {
  std::vector<BatchNorm2d*> out;
  for (auto& [n, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(mod)) out.push_back(bn);
  return out;
}
}  // namespace

void MobileNetV3::set_bn_param(double momentum, double eps) {
  for (auto* bn : all_bns(*this)) {
    bn->momentum = momentum;
    bn->eps = eps;
  }
}

json MobileNetV3::get_bn_param() const {
  auto bns = all_bns(const_cast<MobileNetV3&>(*this));
  if (bns.empty()) return nullptr;
  return json{{"momentum", bns[0]->momentum}, {"eps", bns[0]->eps}, {"ws_eps", nullptr}};
}

int64_t MobileNetV3::count_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace ofa::nn
