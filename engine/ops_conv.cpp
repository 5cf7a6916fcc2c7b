// defines: conv2d, depthwise_conv2d, linear, matmul
#include <algorithm>

#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/common/conv_math.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/depthwise_conv.h"
#include "kernels/cpu/gemm.h"

namespace ofa {

namespace {

using kernels::cpu::blas_ready;
using kernels::cpu::MatRef;

const char* kFreed = " backward: saved tensors were freed by an earlier backward; pass retain_graph=true";

void check_operand(const char* op, const char* arg, const Tensor& t, const Tensor& ref) {
  OFA_CHECK(t.defined(), op, ": ", arg, " is undefined");
  OFA_CHECK(t.dtype() == ref.dtype(), op, ": ", arg, " has dtype ", dtype_name(t.dtype()), " but the input has ",
            dtype_name(ref.dtype()), "; convert one with .to(dtype)");
  OFA_CHECK(t.device() == ref.device(), op, ": ", arg, " is on ", t.device().str(), " but the input is on ",
            ref.device().str(), "; move them to one device");
}

// Whether the last two dims of t can be handed to BLAS in place.
bool matrix_ready(const Tensor& t) {
  const int64_t d = t.dim();
  return blas_ready(t.size(d - 2), t.size(d - 1), t.stride(d - 2), t.stride(d - 1));
}

template <class T>
MatRef<T> mat_of(const Tensor& t, int64_t batch) {
  const int64_t d = t.dim();
  const T* p = t.data<T>() + (d == 3 ? batch * t.stride(0) : 0);
  return {p, t.size(d - 2), t.size(d - 1), t.stride(d - 2), t.stride(d - 1)};
}

// C = A B for detached [M, K] x [K, N] or [B, M, K] x [B, K, N] tensors of any
// strides (copied only when BLAS cannot read them); C is a fresh contiguous
// tensor, initialised with the broadcast bias [N] when one is given.
Tensor mm_raw(Tensor A, Tensor B, const Tensor& bias = Tensor()) {
  if (!matrix_ready(A)) A = A.contiguous();
  if (!matrix_ready(B)) B = B.contiguous();
  const bool batched = A.dim() == 3;
  const int64_t nb = batched ? A.size(0) : 1, M = A.size(-2), N = B.size(-1);
  Tensor C = empty(batched ? Shape{nb, M, N} : Shape{M, N}, A.dtype(), A.device());
  if (A.device().is_cuda()) {
    if (C.numel() == 0) return C;
    const kernels::Stream s = cuda_stream(A.device().index);
    kernels::CudaBackend& be = cuda_backend();
    if (bias.defined())
      be.fill_rows(A.dtype(), C.raw_data(), nb * M, N, N, bias.raw_data(), bias.stride(0), s);
    auto arg = [&](const Tensor& t) {
      const int64_t d = t.dim();
      return kernels::CudaBackend::MatArg{t.raw_data(), t.size(d - 2), t.size(d - 1), t.stride(d - 2),
                                          t.stride(d - 1), d == 3 ? t.stride(0) : 0};
    };
    be.gemm(A.dtype(), arg(A), arg(B), 1.0, bias.defined() ? 1.0 : 0.0, C.raw_data(), N, M * N, nb, s);
    return C;
  }
  OFA_DISPATCH_FLOATING(A.dtype(), "matmul", [&] {
    scalar_t* c = C.data<scalar_t>();
    for (int64_t b = 0; b < nb; ++b) {
      scalar_t* cb = c + b * M * N;
      if (bias.defined()) kernels::cpu::fill_rows(cb, M, N, N, bias.data<scalar_t>(), bias.stride(0));
      kernels::cpu::gemm<scalar_t>(mat_of<scalar_t>(A, b), mat_of<scalar_t>(B, b), scalar_t(1),
                                   bias.defined() ? scalar_t(1) : scalar_t(0), cb, N);
    }
  });
  return C;
}

// Column sums of a [rows, cols] matrix into a fresh [cols] tensor (bias grads).
Tensor sum_rows_raw(const Tensor& m2d) {
  Tensor m = m2d.stride(1) == 1 || m2d.size(1) <= 1 ? m2d : m2d.contiguous();
  Tensor out = empty({m.size(1)}, m.dtype(), m.device());
  if (m.device().is_cuda()) {
    CudaScratch scratch(m.device().index);
    cuda_backend().sum_rows(m.dtype(), m.raw_data(), m.size(0), m.size(1), m.size(0) > 1 ? m.stride(0) : m.size(1),
                            out.raw_data(), 1, scratch, cuda_stream(m.device().index));
    return out;
  }
  OFA_DISPATCH_FLOATING(m.dtype(), "bias gradient", [&] {
    kernels::cpu::sum_rows<scalar_t>(m.data<scalar_t>(), m.size(0), m.size(1), m.size(0) > 1 ? m.stride(0) : m.size(1),
                                     out.data<scalar_t>(), 1);
  });
  return out;
}

// ---------------------------------------------------------------- conv2d

// w [Cout, Cin_g, kh, kw] as the matrix [Cout, Cin_g * kh * kw]: false when
// dims 1..3 do not flatten to one stride.
bool flatten_weight(const Tensor& w, int64_t* rs, int64_t* cs) {
  int64_t c = 1, inner = 1;
  bool have = false;
  for (int64_t d = 3; d >= 1; --d) {
    if (w.size(d) == 1) continue;
    if (!have) {
      c = w.stride(d);
      have = true;
    } else if (w.stride(d) != c * inner) {
      return false;
    }
    inner *= w.size(d);
  }
  *rs = w.stride(0);
  *cs = c;
  return true;
}

struct Conv2dBackward final : Node {
  Tensor x, w;  // detached: x channels-last, w as the kernel read it
  kernels::cpu::Conv2dGeom geom;
  int64_t w_rs = 0, w_cs = 1;
  bool need_x = false, need_w = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), "conv2d", kFreed);
    Tensor dy = g[0].contiguous(MemoryFormat::ChannelsLast);
    Tensor dx, dw, db;
    if (need_x) dx = empty(x.shape(), x.dtype(), x.device(), MemoryFormat::ChannelsLast);
    if (need_w) dw = empty(w.shape(), w.dtype(), w.device());
    if (x.device().is_cuda()) {
      const int dev = x.device().index;
      kernels::CudaBackend& be = cuda_backend();
      CudaScratch scratch(dev);
      if (need_x)
        be.conv2d_backward_input(x.dtype(), geom, dy.raw_data(), w.raw_data(), w_rs, w_cs, dx.raw_data(), scratch,
                                 cuda_stream(dev));
      if (need_w)
        be.conv2d_backward_weight(x.dtype(), geom, x.raw_data(), dy.raw_data(), dw.raw_data(), scratch,
                                  cuda_stream(dev));
    } else {
      OFA_DISPATCH_FLOATING(x.dtype(), "conv2d backward", [&] {
        if (need_x)
          kernels::cpu::conv2d_backward_input<scalar_t>(geom, dy.data<scalar_t>(), w.data<scalar_t>(), w_rs, w_cs,
                                                        dx.data<scalar_t>());
        if (need_w)
          kernels::cpu::conv2d_backward_weight<scalar_t>(geom, x.data<scalar_t>(), dy.data<scalar_t>(),
                                                         dw.data<scalar_t>());
      });
    }
    if (need_b) db = sum_rows_raw(dy.permute({0, 2, 3, 1}).reshape({geom.N * geom.Ho * geom.Wo, geom.Cout}));
    return {dx, dw, db};
  }
  void release() override { x = w = Tensor(); }
  std::string name() const override { return "Conv2dBackward"; }
};

// ---------------------------------------------------------------- depthwise

struct DepthwiseConv2dBackward final : Node {
  Tensor x, w;  // detached: x channels-last, w the (possibly cropped) view
  kernels::cpu::DwGeom geom;
  bool need_x = false, need_w = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), "depthwise_conv2d", kFreed);
    Tensor dy = g[0].contiguous(MemoryFormat::ChannelsLast);
    Tensor dx, dw;
    if (need_x) dx = empty(x.shape(), x.dtype(), x.device(), MemoryFormat::ChannelsLast);
    if (need_w) dw = empty(w.shape(), w.dtype(), w.device());
    if (x.device().is_cuda()) {
      const int dev = x.device().index;
      kernels::CudaBackend& be = cuda_backend();
      if (need_x)
        be.depthwise_backward_input(x.dtype(), geom, dy.raw_data(), w.raw_data(), w.stride(0), w.stride(2),
                                    w.stride(3), dx.raw_data(), cuda_stream(dev));
      if (need_w) {
        CudaScratch scratch(dev);
        be.depthwise_backward_weight(x.dtype(), geom, x.raw_data(), dy.raw_data(), dw.raw_data(), scratch,
                                     cuda_stream(dev));
      }
      return {dx, dw};
    }
    OFA_DISPATCH_FLOATING(x.dtype(), "depthwise_conv2d backward", [&] {
      if (need_x)
        kernels::cpu::depthwise_backward_input<scalar_t>(geom, dy.data<scalar_t>(), w.data<scalar_t>(), w.stride(0),
                                                         w.stride(2), w.stride(3), dx.data<scalar_t>());
      if (need_w)
        kernels::cpu::depthwise_backward_weight<scalar_t>(geom, x.data<scalar_t>(), dy.data<scalar_t>(),
                                                          dw.data<scalar_t>());
    });
    return {dx, dw};
  }
  void release() override { x = w = Tensor(); }
  std::string name() const override { return "DepthwiseConv2dBackward"; }
};

// ---------------------------------------------------------------- linear, matmul

struct LinearBackward final : Node {
  Tensor x2, w;  // detached: x as [M, in], w [out, in]
  Shape x_shape;
  bool need_x = false, need_w = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x2.defined(), "linear", kFreed);
    Tensor dy = g[0].reshape({x2.size(0), w.size(0)});
    Tensor dx, dw, db;
    if (need_x) dx = mm_raw(dy, w).reshape(x_shape);
    if (need_w) dw = mm_raw(dy.transpose(0, 1), x2);
    if (need_b) db = sum_rows_raw(dy);
    return {dx, dw, db};
  }
  void release() override { x2 = w = Tensor(); }
  std::string name() const override { return "LinearBackward"; }
};

struct MatmulBackward final : Node {
  Tensor a, b;  // detached
  bool need_a = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(a.defined(), "matmul", kFreed);
    return {need_a ? mm_raw(g[0], b.transpose(-1, -2)) : Tensor(),
            need_b ? mm_raw(a.transpose(-1, -2), g[0]) : Tensor()};
  }
  void release() override { a = b = Tensor(); }
  std::string name() const override { return "MatmulBackward"; }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& args) {
  OFA_CHECK(x.defined(), "conv2d: input x is undefined");
  check_operand("conv2d", "weight", w, x);
  OFA_CHECK(x.dim() == 4, "conv2d: input x must be 4-D [N, Cin, H, W], got ", shape_str(x.shape()));
  OFA_CHECK(w.dim() == 4, "conv2d: weight must be 4-D [Cout, Cin/groups, kh, kw], got ", shape_str(w.shape()));
  const int64_t G = args.groups, Cin = x.size(1), Cout = w.size(0);
  OFA_CHECK(G >= 1, "conv2d: groups must be >= 1, got ", G);
  OFA_CHECK(Cin % G == 0 && Cout % G == 0, "conv2d: groups = ", G, " must divide both the input channels (x ",
            shape_str(x.shape()), ") and the output channels (weight ", shape_str(w.shape()), ")");
  OFA_CHECK(w.size(1) * G == Cin, "conv2d: input x ", shape_str(x.shape()), " has ", Cin,
            " channels but weight ", shape_str(w.shape()), " with groups = ", G, " expects ", w.size(1) * G,
            " (weight dim 1 must be Cin / groups)");
  for (int d = 0; d < 2; ++d) {
    OFA_CHECK(args.stride[d] >= 1, "conv2d: stride must be >= 1, got [", args.stride[0], ", ", args.stride[1], "]");
    OFA_CHECK(args.padding[d] >= 0, "conv2d: padding must be >= 0, got [", args.padding[0], ", ", args.padding[1],
              "]");
  }
  if (bias.defined()) {
    check_operand("conv2d", "bias", bias, x);
    OFA_CHECK(bias.dim() == 1 && bias.size(0) == Cout, "conv2d: bias ", shape_str(bias.shape()), " must be [", Cout,
              "] for weight ", shape_str(w.shape()));
  }
  kernels::cpu::Conv2dGeom g;
  g.N = x.size(0), g.H = x.size(2), g.W = x.size(3), g.Cin = Cin, g.Cout = Cout;
  g.kh = w.size(2), g.kw = w.size(3), g.sh = args.stride[0], g.sw = args.stride[1];
  g.ph = args.padding[0], g.pw = args.padding[1], g.groups = G;
  g.Ho = kernels::conv_out_size(g.H, g.kh, g.sh, g.ph);
  g.Wo = kernels::conv_out_size(g.W, g.kw, g.sw, g.pw);
  OFA_CHECK(g.Ho > 0 && g.Wo > 0, "conv2d: input x ", shape_str(x.shape()), " padded by [", g.ph, ", ", g.pw,
            "] is smaller than the kernel of weight ", shape_str(w.shape()));

  Tensor xc = x.detach().contiguous(MemoryFormat::ChannelsLast);
  // The weight is read in place (leading slices included); a copy is made
  // only when its dims 1..3 do not flatten to one BLAS-readable matrix.
  Tensor wd = w.detach();
  int64_t rs = 0, cs = 1;
  if (!flatten_weight(wd, &rs, &cs) || !blas_ready(g.cout_g(), g.k_g(), rs, cs)) {
    wd = wd.contiguous();
    flatten_weight(wd, &rs, &cs);
  }
  Tensor y = empty({g.N, Cout, g.Ho, g.Wo}, x.dtype(), x.device(), MemoryFormat::ChannelsLast);
  if (x.device().is_cuda()) {
    CudaScratch scratch(x.device().index);
    cuda_backend().conv2d_forward(x.dtype(), g, xc.raw_data(), wd.raw_data(), rs, cs,
                                  bias.defined() ? bias.raw_data() : nullptr, bias.defined() ? bias.stride(0) : 0,
                                  y.raw_data(), scratch, cuda_stream(x.device().index));
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), "conv2d", [&] {
      kernels::cpu::conv2d_forward<scalar_t>(g, xc.data<scalar_t>(), wd.data<scalar_t>(), rs, cs,
                                             bias.defined() ? bias.data<scalar_t>() : nullptr,
                                             bias.defined() ? bias.stride(0) : 0, y.data<scalar_t>());
    });
  }
  if (any_requires_grad({&x, &w, &bias})) {
    auto n = std::make_shared<Conv2dBackward>();
    n->x = xc;
    n->w = wd;
    n->geom = g;
    n->w_rs = rs;
    n->w_cs = cs;
    n->need_x = x.requires_grad();
    n->need_w = w.requires_grad();
    n->need_b = bias.defined() && bias.requires_grad();
    set_history(y, n, {&x, &w, &bias});
  }
  return y;
}

Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, int64_t stride) {
  OFA_CHECK(x.defined(), "depthwise_conv2d: input x is undefined");
  check_operand("depthwise_conv2d", "weight", w, x);
  OFA_CHECK(x.dim() == 4, "depthwise_conv2d: input x must be 4-D [N, C, H, W], got ", shape_str(x.shape()));
  OFA_CHECK(w.dim() == 4 && w.size(1) == 1 && w.size(2) == w.size(3),
            "depthwise_conv2d: weight must be [C, 1, k, k], got ", shape_str(w.shape()));
  OFA_CHECK(w.size(0) == x.size(1), "depthwise_conv2d: input x ", shape_str(x.shape()), " has ", x.size(1),
            " channels but weight ", shape_str(w.shape()), " has ", w.size(0), " (slice the weight to the channels)");
  const int64_t k = w.size(2);
  OFA_CHECK(k % 2 == 1, "depthwise_conv2d: kernel size must be odd (padding is k / 2), weight ",
            shape_str(w.shape()));
  OFA_CHECK(stride >= 1, "depthwise_conv2d: stride must be >= 1, got ", stride);
  kernels::cpu::DwGeom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3), g.k = k, g.stride = stride, g.pad = k / 2;
  g.Ho = kernels::conv_out_size(g.H, k, stride, g.pad);
  g.Wo = kernels::conv_out_size(g.W, k, stride, g.pad);
  OFA_CHECK(g.Ho > 0 && g.Wo > 0, "depthwise_conv2d: input x ", shape_str(x.shape()), " has an empty spatial size");

  Tensor xc = x.detach().contiguous(MemoryFormat::ChannelsLast);
  Tensor wd = w.detach();  // read through its strides, never copied
  Tensor y = empty({g.N, g.C, g.Ho, g.Wo}, x.dtype(), x.device(), MemoryFormat::ChannelsLast);
  if (x.device().is_cuda()) {
    cuda_backend().depthwise_forward(x.dtype(), g, xc.raw_data(), wd.raw_data(), wd.stride(0), wd.stride(2),
                                     wd.stride(3), y.raw_data(), cuda_stream(x.device().index));
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), "depthwise_conv2d", [&] {
      kernels::cpu::depthwise_forward<scalar_t>(g, xc.data<scalar_t>(), wd.data<scalar_t>(), wd.stride(0),
                                                wd.stride(2), wd.stride(3), y.data<scalar_t>());
    });
  }
  if (any_requires_grad({&x, &w})) {
    auto n = std::make_shared<DepthwiseConv2dBackward>();
    n->x = xc;
    n->w = wd;
    n->geom = g;
    n->need_x = x.requires_grad();
    n->need_w = w.requires_grad();
    set_history(y, n, {&x, &w});
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  OFA_CHECK(x.defined(), "linear: input x is undefined");
  check_operand("linear", "weight", w, x);
  OFA_CHECK(x.dim() >= 1, "linear: input x must have at least one dim [..., in_features], got ",
            shape_str(x.shape()));
  OFA_CHECK(w.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got ", shape_str(w.shape()));
  const int64_t in = w.size(1), out = w.size(0);
  OFA_CHECK(x.size(-1) == in, "linear: input x ", shape_str(x.shape()), " has ", x.size(-1),
            " features in its last dim but weight ", shape_str(w.shape()), " expects ", in,
            " (weight is [out_features, in_features])");
  if (bias.defined()) {
    check_operand("linear", "bias", bias, x);
    OFA_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias ", shape_str(bias.shape()), " must be [", out,
              "] for weight ", shape_str(w.shape()));
  }
  int64_t M = 1;
  for (int64_t d = 0; d + 1 < x.dim(); ++d) M *= x.size(d);
  Tensor x2 = x.dim() == 2 ? x.detach() : x.detach().reshape({M, in});
  Tensor wd = w.detach();  // any row stride: BLAS reads it with lda = stride(0)
  Shape y_shape(x.shape().begin(), x.shape().end() - 1);
  y_shape.push_back(out);
  Tensor y = mm_raw(x2, wd.transpose(0, 1), bias.defined() ? bias.detach() : Tensor()).reshape(y_shape);
  if (any_requires_grad({&x, &w, &bias})) {
    auto n = std::make_shared<LinearBackward>();
    n->x2 = x2;
    n->w = wd;
    n->x_shape = x.shape();
    n->need_x = x.requires_grad();
    n->need_w = w.requires_grad();
    n->need_b = bias.defined() && bias.requires_grad();
    set_history(y, n, {&x, &w, &bias});
  }
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  OFA_CHECK(a.defined(), "matmul: a is undefined");
  check_operand("matmul", "b", b, a);
  OFA_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3),
            "matmul: expects [M, K] x [K, N] or [B, M, K] x [B, K, N], got ", shape_str(a.shape()), " and ",
            shape_str(b.shape()));
  OFA_CHECK(a.size(-1) == b.size(-2), "matmul: inner sizes differ: a ", shape_str(a.shape()), " x b ",
            shape_str(b.shape()), " (a's last dim must equal b's second to last)");
  OFA_CHECK(a.dim() == 2 || a.size(0) == b.size(0), "matmul: batch sizes differ: a ", shape_str(a.shape()), " and b ",
            shape_str(b.shape()));
  Tensor ad = a.detach(), bd = b.detach();
  Tensor y = mm_raw(ad, bd);
  if (any_requires_grad({&a, &b})) {
    auto n = std::make_shared<MatmulBackward>();
    n->a = ad;
    n->b = bd;
    n->need_a = a.requires_grad();
    n->need_b = b.requires_grad();
    set_history(y, n, {&a, &b});
  }
  return y;
}

}  // namespace ofa
