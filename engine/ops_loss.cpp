// defines: log_softmax, softmax, cross_entropy, cross_entropy_soft, mse_loss
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/cpu/softmax.h"

namespace ofa {

namespace {

// [outer, K, inner] sizes of a row-major tensor around dimension d.
void split_at(const Tensor& x, int64_t d, int64_t* outer, int64_t* K, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < d; ++i) *outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) *inner *= x.size(i);
  *K = x.size(d);
}

// The scalar gradient of a 0-D loss, on the host.
double loss_grad(const std::vector<Tensor>& g) { return g[0].defined() ? g[0].item() : 0.0; }

// The same on a CUDA device: a 0-D tensor of the loss's dtype that stays on
// the device (the kernels read it there; no synchronisation per step).
Tensor loss_grad_device(const std::vector<Tensor>& g, const Tensor& like) {
  if (!g[0].defined()) return zeros({}, like.dtype(), like.device());
  return g[0].dtype() == like.dtype() ? g[0].contiguous() : g[0].to(like.dtype());
}

struct SoftmaxBackward final : Node {
  Tensor y;  // detached row-major output
  int64_t dim = 0;
  bool log = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    const char* nm = log ? "log_softmax backward" : "softmax backward";
    OFA_CHECK(y.defined(), nm, ": saved output was freed by an earlier backward; pass retain_graph=true");
    Tensor gy = g[0].contiguous();
    Tensor gx = empty_like(y);
    int64_t outer, K, inner;
    split_at(y, dim, &outer, &K, &inner);
    if (y.device().is_cuda()) {
      cuda_backend().softmax_backward(y.dtype(), y.raw_data(), gy.raw_data(), gx.raw_data(), outer, K, inner, log,
                                      cuda_stream(y.device().index));
      return {gx};
    }
    OFA_DISPATCH_FLOATING(y.dtype(), nm, [&] {
      kernels::cpu::softmax_backward<scalar_t>(y.data<scalar_t>(), gy.data<scalar_t>(), gx.data<scalar_t>(), outer, K,
                                               inner, log);
    });
    return {gx};
  }
  void release() override { y = Tensor(); }
  std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
};

Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* nm = log ? "log_softmax" : "softmax";
  OFA_CHECK(x_in.defined(), nm, ": undefined input");
  OFA_CHECK(x_in.dim() >= 1, nm, ": needs at least one dimension, got a 0-D tensor");
  OFA_CHECK(dim >= -x_in.dim() && dim < x_in.dim(), nm, ": dim ", dim, " is out of range for shape ",
            shape_str(x_in.shape()));
  const int64_t d = x_in.wrap_dim(dim);
  Tensor x = x_in.detach().contiguous();
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  int64_t outer, K, inner;
  split_at(x, d, &outer, &K, &inner);
  if (x.device().is_cuda()) {
    if (x.numel() > 0)
      cuda_backend().softmax_forward(x.dtype(), x.raw_data(), y.raw_data(), outer, K, inner, log,
                                     cuda_stream(x.device().index));
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), nm, [&] {
      kernels::cpu::softmax_forward<scalar_t>(x.data<scalar_t>(), y.data<scalar_t>(), outer, K, inner, log);
    });
  }
  if (any_requires_grad({&x_in})) {
    auto n = std::make_shared<SoftmaxBackward>();
    n->y = y.detach();  // not y itself: the node must not own its own output
    n->dim = d;
    n->log = log;
    set_history(y, n, {&x_in});
  }
  return y;
}

void check_logits(const Tensor& logits, const char* nm) {
  OFA_CHECK(logits.defined(), nm, ": undefined logits");
  OFA_CHECK(logits.dim() == 2, nm, ": logits must be [N, K], got shape ", shape_str(logits.shape()));
  OFA_CHECK(logits.size(1) > 0, nm, ": logits ", shape_str(logits.shape()), " have no classes");
}

}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }

// ---------------------------------------------------------------- cross entropy

namespace {
struct CrossEntropyBackward final : Node {
  Tensor x, target, lse;  // detached row-major logits, int64 labels, float64 [N] log-sum-exp
  double ls = 0.0;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), "cross_entropy backward: saved tensors were freed by an earlier backward; pass retain_graph=true");
    const int64_t N = x.size(0), K = x.size(1);
    Tensor gx = empty_like(x);
    if (x.device().is_cuda()) {
      const Tensor gl = loss_grad_device(g, x);
      cuda_backend().cross_entropy_backward(x.dtype(), x.raw_data(), target.data<int64_t>(), lse.data<double>(), N, K,
                                            ls, gl.raw_data(), N > 0 ? 1.0 / static_cast<double>(N) : 0.0,
                                            gx.raw_data(), cuda_stream(x.device().index));
      return {gx};
    }
    const double scale = N > 0 ? loss_grad(g) / static_cast<double>(N) : 0.0;
    OFA_DISPATCH_FLOATING(x.dtype(), "cross_entropy backward", [&] {
      kernels::cpu::cross_entropy_backward<scalar_t>(x.data<scalar_t>(), target.data<int64_t>(), lse.data<double>(), N,
                                                     K, ls, scale, gx.data<scalar_t>());
    });
    return {gx};
  }
  void release() override { x = target = lse = Tensor(); }
  std::string name() const override { return "CrossEntropyBackward"; }
};
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target_in, double label_smoothing) {
  check_logits(logits, "cross_entropy");
  OFA_CHECK(target_in.defined(), "cross_entropy: undefined target");
  OFA_CHECK(target_in.dtype() == DType::I64, "cross_entropy: target must be int64 class labels, got ",
            dtype_name(target_in.dtype()));
  const int64_t N = logits.size(0), K = logits.size(1);
  OFA_CHECK(target_in.dim() == 1 && target_in.size(0) == N, "cross_entropy: target has shape ",
            shape_str(target_in.shape()), " but logits ", shape_str(logits.shape()), " need a [", N, "] target");
  OFA_CHECK_SAME_DEVICE("cross_entropy", logits, target_in);
  OFA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "cross_entropy: label_smoothing ", label_smoothing,
            " is outside [0, 1]");
  Tensor target = target_in.detach().contiguous();
  Tensor x = logits.detach().contiguous();
  Tensor lse = empty({N}, DType::F64, x.device());
  Tensor out;
  if (x.device().is_cuda()) {
    // Labels are checked on the device: a bad one is recorded and raised at
    // the next synchronisation (reading the loss, at the latest).
    const int dev = x.device().index;
    out = empty({}, x.dtype(), x.device());
    CudaScratch scratch(dev);
    cuda_backend().cross_entropy_forward(x.dtype(), x.raw_data(), target.data<int64_t>(), N, K, label_smoothing,
                                         lse.data<double>(), out.raw_data(), cuda_error_record(dev), scratch,
                                         cuda_stream(dev));
  } else {
    const int64_t* t = target.data<int64_t>();
    for (int64_t n = 0; n < N; ++n)
      OFA_CHECK(t[n] >= 0 && t[n] < K, "cross_entropy: target[", n, "] = ", t[n], " is not a class label in [0, ", K,
                ") for logits of shape ", shape_str(logits.shape()), " (K = ", K, " classes)");
    double loss = 0.0;
    OFA_DISPATCH_FLOATING(x.dtype(), "cross_entropy", [&] {
      loss = kernels::cpu::cross_entropy_forward<scalar_t>(x.data<scalar_t>(), t, N, K, label_smoothing,
                                                           lse.data<double>());
    });
    out = scalar_tensor(loss, x.dtype(), x.device());
  }
  if (any_requires_grad({&logits})) {
    auto n = std::make_shared<CrossEntropyBackward>();
    n->x = x;
    n->target = target.clone();  // labels are tiny; a copy survives later in-place edits
    n->lse = lse;
    n->ls = label_smoothing;
    set_history(out, n, {&logits});
  }
  return out;
}

namespace {
struct CrossEntropySoftBackward final : Node {
  Tensor x, soft, lse;
  bool need_x = false, need_soft = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), "cross_entropy_soft backward: saved tensors were freed by an earlier backward; pass retain_graph=true");
    const int64_t N = x.size(0), K = x.size(1);
    Tensor gx = need_x ? empty_like(x) : Tensor();
    Tensor gs = need_soft ? empty_like(soft) : Tensor();
    if (x.device().is_cuda()) {
      const Tensor gl = loss_grad_device(g, x);
      cuda_backend().cross_entropy_soft_backward(x.dtype(), x.raw_data(), soft.raw_data(), lse.data<double>(), N, K,
                                                 gl.raw_data(), N > 0 ? 1.0 / static_cast<double>(N) : 0.0,
                                                 need_x ? gx.raw_data() : nullptr, need_soft ? gs.raw_data() : nullptr,
                                                 cuda_stream(x.device().index));
      return {gx, gs};
    }
    const double scale = N > 0 ? loss_grad(g) / static_cast<double>(N) : 0.0;
    OFA_DISPATCH_FLOATING(x.dtype(), "cross_entropy_soft backward", [&] {
      kernels::cpu::cross_entropy_soft_backward<scalar_t>(x.data<scalar_t>(), soft.data<scalar_t>(), lse.data<double>(),
                                                          N, K, scale, need_x ? gx.data<scalar_t>() : nullptr,
                                                          need_soft ? gs.data<scalar_t>() : nullptr);
    });
    return {gx, gs};
  }
  void release() override { x = soft = lse = Tensor(); }
  std::string name() const override { return "CrossEntropySoftBackward"; }
};
}  // namespace

Tensor cross_entropy_soft(const Tensor& logits, const Tensor& soft_target) {
  check_logits(logits, "cross_entropy_soft");
  OFA_CHECK(soft_target.defined(), "cross_entropy_soft: undefined soft_target");
  OFA_CHECK(soft_target.shape() == logits.shape(), "cross_entropy_soft: soft_target has shape ",
            shape_str(soft_target.shape()), " but logits have shape ", shape_str(logits.shape()),
            "; they must match");
  OFA_CHECK(soft_target.dtype() == logits.dtype(), "cross_entropy_soft: soft_target is ",
            dtype_name(soft_target.dtype()), " but logits are ", dtype_name(logits.dtype()));
  OFA_CHECK_SAME_DEVICE("cross_entropy_soft", logits, soft_target);
  const int64_t N = logits.size(0), K = logits.size(1);
  Tensor x = logits.detach().contiguous(), s = soft_target.detach().contiguous();
  Tensor lse = empty({N}, DType::F64, x.device());
  Tensor out;
  if (x.device().is_cuda()) {
    out = empty({}, x.dtype(), x.device());
    CudaScratch scratch(x.device().index);
    cuda_backend().cross_entropy_soft_forward(x.dtype(), x.raw_data(), s.raw_data(), N, K, lse.data<double>(),
                                              out.raw_data(), scratch, cuda_stream(x.device().index));
  } else {
    double loss = 0.0;
    OFA_DISPATCH_FLOATING(x.dtype(), "cross_entropy_soft", [&] {
      loss = kernels::cpu::cross_entropy_soft_forward<scalar_t>(x.data<scalar_t>(), s.data<scalar_t>(), N, K,
                                                                lse.data<double>());
    });
    out = scalar_tensor(loss, x.dtype(), x.device());
  }
  if (any_requires_grad({&logits, &soft_target})) {
    auto n = std::make_shared<CrossEntropySoftBackward>();
    n->x = x;
    n->soft = s;
    n->lse = lse;
    n->need_x = logits.requires_grad();
    n->need_soft = soft_target.requires_grad();
    set_history(out, n, {&logits, &soft_target});
  }
  return out;
}

// ---------------------------------------------------------------- mse

namespace {
struct MseBackward final : Node {
  Tensor a, b;  // detached row-major
  bool need_a = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(a.defined(), "mse_loss backward: saved tensors were freed by an earlier backward; pass retain_graph=true");
    const int64_t n = a.numel();
    Tensor ga = need_a ? empty_like(a) : Tensor();
    Tensor gb = need_b ? empty_like(b) : Tensor();
    if (a.device().is_cuda()) {
      const Tensor gl = loss_grad_device(g, a);
      if (n > 0)
        cuda_backend().mse_backward(a.dtype(), a.raw_data(), b.raw_data(), n, gl.raw_data(),
                                    2.0 / static_cast<double>(n), need_a ? ga.raw_data() : nullptr,
                                    need_b ? gb.raw_data() : nullptr, cuda_stream(a.device().index));
      return {ga, gb};
    }
    const double scale = n > 0 ? 2.0 * loss_grad(g) / static_cast<double>(n) : 0.0;
    OFA_DISPATCH_FLOATING(a.dtype(), "mse_loss backward", [&] {
      kernels::cpu::mse_backward<scalar_t>(a.data<scalar_t>(), b.data<scalar_t>(), n, scale,
                                           need_a ? ga.data<scalar_t>() : nullptr,
                                           need_b ? gb.data<scalar_t>() : nullptr);
    });
    return {ga, gb};
  }
  void release() override { a = b = Tensor(); }
  std::string name() const override { return "MseBackward"; }
};
}  // namespace

Tensor mse_loss(const Tensor& a_in, const Tensor& b_in) {
  OFA_CHECK(a_in.defined() && b_in.defined(), "mse_loss: undefined input");
  OFA_CHECK(a_in.shape() == b_in.shape(), "mse_loss: shapes ", shape_str(a_in.shape()), " and ",
            shape_str(b_in.shape()), " differ; pass tensors of one shape");
  OFA_CHECK(a_in.dtype() == b_in.dtype(), "mse_loss: dtypes differ (", dtype_name(a_in.dtype()), " and ",
            dtype_name(b_in.dtype()), ")");
  OFA_CHECK_SAME_DEVICE("mse_loss", a_in, b_in);
  Tensor a = a_in.detach().contiguous(), b = b_in.detach().contiguous();
  Tensor out;
  if (a.device().is_cuda()) {
    out = empty({}, a.dtype(), a.device());
    CudaScratch scratch(a.device().index);
    cuda_backend().mse_forward(a.dtype(), a.raw_data(), b.raw_data(), a.numel(), out.raw_data(), scratch,
                               cuda_stream(a.device().index));
  } else {
    double loss = 0.0;
    OFA_DISPATCH_FLOATING(a.dtype(), "mse_loss", [&] {
      loss = kernels::cpu::mse_forward<scalar_t>(a.data<scalar_t>(), b.data<scalar_t>(), a.numel());
    });
    out = scalar_tensor(loss, a.dtype(), a.device());
  }
  if (any_requires_grad({&a_in, &b_in})) {
    auto n = std::make_shared<MseBackward>();
    n->a = a;
    n->b = b;
    n->need_a = a_in.requires_grad();
    n->need_b = b_in.requires_grad();
    set_history(out, n, {&a_in, &b_in});
  }
  return out;
}

}  // namespace ofa
