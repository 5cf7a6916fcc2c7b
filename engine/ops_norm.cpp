// defines: batch_norm, batch_norm_act, global_avg_pool2d, dropout
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/common/bn_math.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/pool.h"

namespace ofa {

namespace {

// 4-D activations are computed channels-last, [N, C] rows as they are; either
// way the data is an [M, C] row-major block.
Tensor bn_layout(const Tensor& t) {
  return t.dim() == 4 ? t.contiguous(MemoryFormat::ChannelsLast) : t.contiguous();
}

// A gradient laid out exactly like the saved input (same strides).
Tensor like_layout(const Tensor& g, const Tensor& ref) {
  if (g.strides() == ref.strides()) return g;
  return empty_like(ref).copy_(g);
}

struct BatchNormBackward final : Node {
  Tensor x;               // detached, [M, C] layout
  Tensor weight;          // detached copy of the [C] weight, or undefined
  Tensor bias;            // with an activation: detached copy of the [C] bias, or undefined
  Tensor mean, invstd;    // float64 [C]: the statistics the forward normalised with
  Act act = Act::Identity;
  bool training = true;
  bool need_x = false, need_w = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), "batch_norm backward: saved tensors were freed by an earlier backward; pass retain_graph=true");
    const int64_t C = x.size(1), M = x.numel() / C;
    Tensor gy = like_layout(g[0], x);
    Tensor gx = need_x ? empty_like(x) : Tensor();
    Tensor gw = need_w ? empty({C}, x.dtype(), x.device()) : Tensor();
    Tensor gb = need_b ? empty({C}, x.dtype(), x.device()) : Tensor();
    if (x.device().is_cuda()) {
      const int dev = x.device().index;
      CudaScratch scratch(dev);
      cuda_backend().bn_backward(x.dtype(), x.raw_data(), gy.raw_data(), M, C, mean.data<double>(),
                                 invstd.data<double>(), weight.defined() ? weight.raw_data() : nullptr,
                                 weight.defined() ? weight.stride(0) : 0, training,
                                 need_x ? gx.raw_data() : nullptr, need_w ? gw.raw_data() : nullptr,
                                 need_b ? gb.raw_data() : nullptr, act, bias.defined() ? bias.raw_data() : nullptr,
                                 bias.defined() ? bias.stride(0) : 0, scratch, cuda_stream(dev));
      return {gx, gw, gb};
    }
    OFA_DISPATCH_FLOATING(x.dtype(), "batch_norm backward", [&] {
      kernels::cpu::bn_backward<scalar_t>(
          x.data<scalar_t>(), gy.data<scalar_t>(), M, C, mean.data<double>(), invstd.data<double>(),
          weight.defined() ? weight.data<scalar_t>() : nullptr, weight.defined() ? weight.stride(0) : 0, training,
          need_x ? gx.data<scalar_t>() : nullptr, need_w ? gw.data<scalar_t>() : nullptr,
          need_b ? gb.data<scalar_t>() : nullptr, act, bias.defined() ? bias.data<scalar_t>() : nullptr,
          bias.defined() ? bias.stride(0) : 0);
    });
    return {gx, gw, gb};
  }
  void release() override { x = weight = bias = mean = invstd = Tensor(); }
  std::string name() const override {
    return act == Act::Identity ? "BatchNormBackward" : str_cat("BatchNormActBackward(", kernels::act_name(act), ")");
  }
};

void check_channel_vector(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  const int64_t C = x.size(1);
  OFA_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " has shape ", shape_str(t.shape()),
            " but the input ", shape_str(x.shape()), " has ", C, " channels; pass a [", C,
            "] vector (a leading slice .narrow(0, 0, ", C, ") of a larger one works)");
  OFA_CHECK(t.dtype() == x.dtype(), "batch_norm: ", what, " is ", dtype_name(t.dtype()), " but the input is ",
            dtype_name(x.dtype()));
  OFA_CHECK_SAME_DEVICE("batch_norm", x, t);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, Act::Identity);
}

Tensor batch_norm_act(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, bool training, double momentum, double eps, Act act) {
  OFA_CHECK(x_in.defined(), "batch_norm: undefined input");
  OFA_CHECK(x_in.dim() == 4 || x_in.dim() == 2, "batch_norm: input must be [N, C, H, W] or [N, C], got shape ",
            shape_str(x_in.shape()));
  check_channel_vector(x_in, weight, "weight");
  check_channel_vector(x_in, bias, "bias");
  check_channel_vector(x_in, running_mean, "running_mean");
  check_channel_vector(x_in, running_var, "running_var");
  OFA_CHECK(running_mean.defined() == running_var.defined(),
            "batch_norm: pass both running_mean and running_var, or neither");
  OFA_CHECK(training || running_mean.defined(),
            "batch_norm: evaluation mode (training=false) needs running_mean and running_var");
  for (const Tensor* t : {&running_mean, &running_var})
    OFA_CHECK(!t->defined() || !t->requires_grad(),
              "batch_norm: running statistics are buffers updated in place and must not require grad");
  OFA_CHECK(eps >= 0.0, "batch_norm: eps must be >= 0, got ", eps);
  const int64_t C = x_in.size(1);
  const int64_t M = C > 0 ? x_in.numel() / C : 0;
  OFA_CHECK(!training || M > 1, "batch_norm: training needs more than one value per channel, got input shape ",
            shape_str(x_in.shape()));
  OFA_CHECK(M > 0 && C > 0, "batch_norm: empty input of shape ", shape_str(x_in.shape()));

  Tensor x = bn_layout(x_in.detach());
  Tensor y = empty_like(x);
  Tensor mean = empty({C}, DType::F64, x.device()), invstd = empty({C}, DType::F64, x.device());
  if (x.device().is_cuda()) {
    const int dev = x.device().index;
    const kernels::Stream st = cuda_stream(dev);
    kernels::CudaBackend& be = cuda_backend();
    if (training) {
      CudaScratch scratch(dev);
      double* var = static_cast<double*>(scratch.get(static_cast<size_t>(C) * sizeof(double)));
      be.bn_batch_stats(x.dtype(), x.raw_data(), M, C, mean.data<double>(), var, scratch, st);
      // Buffers: written through their pointers (a slice updates the larger
      // vector in place), never recorded by autograd.
      const bool run = running_mean.defined();
      be.bn_finish_stats(x.dtype(), mean.data<double>(), var, C, M, eps, run ? running_mean.raw_data() : nullptr,
                         run ? running_mean.stride(0) : 0, run ? running_var.raw_data() : nullptr,
                         run ? running_var.stride(0) : 0, momentum, invstd.data<double>(), st);
    } else {
      be.bn_eval_stats(x.dtype(), running_mean.raw_data(), running_mean.stride(0), running_var.raw_data(),
                       running_var.stride(0), C, eps, mean.data<double>(), invstd.data<double>(), st);
    }
    be.bn_forward(x.dtype(), x.raw_data(), M, C, mean.data<double>(), invstd.data<double>(),
                  weight.defined() ? weight.raw_data() : nullptr, weight.defined() ? weight.stride(0) : 0,
                  bias.defined() ? bias.raw_data() : nullptr, bias.defined() ? bias.stride(0) : 0, y.raw_data(), act,
                  st);
  } else {
  OFA_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    double* pm = mean.data<double>();
    double* pi = invstd.data<double>();
    if (training) {
      std::vector<double> var(C);
      kernels::cpu::bn_batch_stats<scalar_t>(x.data<scalar_t>(), M, C, pm, var.data());
      for (int64_t c = 0; c < C; ++c) pi[c] = kernels::bn_invstd(var[c], eps);
      // Buffers: written through their pointers (a slice updates the larger
      // vector in place), never recorded by autograd.
      if (running_mean.defined())
        kernels::cpu::bn_update_running<scalar_t>(running_mean.data<scalar_t>(), running_mean.stride(0),
                                                  running_var.data<scalar_t>(), running_var.stride(0), pm, var.data(),
                                                  C, M, momentum);
    } else {
      const scalar_t* rm = running_mean.data<scalar_t>();
      const scalar_t* rv = running_var.data<scalar_t>();
      for (int64_t c = 0; c < C; ++c) {
        pm[c] = static_cast<double>(rm[c * running_mean.stride(0)]);
        pi[c] = kernels::bn_invstd(static_cast<double>(rv[c * running_var.stride(0)]), eps);
      }
    }
    kernels::cpu::bn_forward<scalar_t>(x.data<scalar_t>(), M, C, pm, pi,
                                       weight.defined() ? weight.data<scalar_t>() : nullptr,
                                       weight.defined() ? weight.stride(0) : 0,
                                       bias.defined() ? bias.data<scalar_t>() : nullptr,
                                       bias.defined() ? bias.stride(0) : 0, y.data<scalar_t>(), act);
  });
  }
  if (any_requires_grad({&x_in, &weight, &bias})) {
    auto n = std::make_shared<BatchNormBackward>();
    n->x = x;
    // A copy: an optimizer step before backward must not change the weight used.
    if (weight.defined()) n->weight = weight.detach().clone();
    // The activation's derivative needs z, recomputed with the same bias.
    if (act != Act::Identity && bias.defined()) n->bias = bias.detach().clone();
    n->act = act;
    n->mean = mean;
    n->invstd = invstd;
    n->training = training;
    n->need_x = x_in.requires_grad();
    n->need_w = weight.defined() && weight.requires_grad();
    n->need_b = bias.defined() && bias.requires_grad();
    set_history(y, n, {&x_in, &weight, &bias});
  }
  return y;
}

// ---------------------------------------------------------------- pooling

namespace {
struct GlobalAvgPoolBackward final : Node {
  Shape in_shape;
  DType dtype = DType::F32;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    const int64_t N = in_shape[0], C = in_shape[1], HW = in_shape[2] * in_shape[3];
    Tensor gy = g[0].contiguous();  // [N, C, 1, 1]: row-major is also channels-last
    Tensor gx = empty(in_shape, dtype, gy.device(), MemoryFormat::ChannelsLast);
    if (gy.device().is_cuda()) {
      cuda_backend().global_avg_pool_backward(dtype, gy.raw_data(), N, HW, C, gx.raw_data(),
                                              cuda_stream(gy.device().index));
      return {gx};
    }
    OFA_DISPATCH_FLOATING(dtype, "global_avg_pool2d backward", [&] {
      kernels::cpu::global_avg_pool_backward<scalar_t>(gy.data<scalar_t>(), N, HW, C, gx.data<scalar_t>());
    });
    return {gx};
  }
  std::string name() const override { return "GlobalAvgPoolBackward"; }
};
}  // namespace

Tensor global_avg_pool2d(const Tensor& x_in) {
  OFA_CHECK(x_in.defined(), "global_avg_pool2d: undefined input");
  OFA_CHECK(x_in.dim() == 4, "global_avg_pool2d: input must be [N, C, H, W], got shape ", shape_str(x_in.shape()));
  OFA_CHECK(x_in.size(2) * x_in.size(3) > 0, "global_avg_pool2d: empty image in input of shape ",
            shape_str(x_in.shape()));
  const int64_t N = x_in.size(0), C = x_in.size(1), HW = x_in.size(2) * x_in.size(3);
  Tensor x = x_in.detach().contiguous(MemoryFormat::ChannelsLast);
  Tensor y = empty({N, C, 1, 1}, x.dtype(), x.device(), MemoryFormat::ChannelsLast);
  if (x.device().is_cuda()) {
    cuda_backend().global_avg_pool_forward(x.dtype(), x.raw_data(), N, HW, C, y.raw_data(),
                                           cuda_stream(x.device().index));
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), "global_avg_pool2d", [&] {
      kernels::cpu::global_avg_pool_forward<scalar_t>(x.data<scalar_t>(), N, HW, C, y.data<scalar_t>());
    });
  }
  if (any_requires_grad({&x_in})) {
    auto n = std::make_shared<GlobalAvgPoolBackward>();
    n->in_shape = x.shape();
    n->dtype = x.dtype();
    set_history(y, n, {&x_in});
  }
  return y;
}

// ---------------------------------------------------------------- dropout

namespace {
// y = x * mask for dense tensors of one layout, on the CUDA backend.
void cuda_mask_mul(const Tensor& x, const Tensor& mask, Tensor& y) {
  if (x.numel() == 0) return;
  const Shape flat{x.numel()};
  cuda_backend().binary(kernels::BinOp::Mul, x.dtype(), y.raw_data(), x.raw_data(), mask.raw_data(),
                        cuda_args<3>("dropout", flat, {Shape{1}, Shape{1}, Shape{1}}), cuda_stream(x.device().index));
}

struct DropoutBackward final : Node {
  Tensor mask;  // 0 or 1 / (1 - p), laid out like the forward's input
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(mask.defined(), "dropout backward: saved mask was freed by an earlier backward; pass retain_graph=true");
    Tensor gy = like_layout(g[0], mask);
    Tensor gx = empty_like(mask);
    if (mask.device().is_cuda()) {
      cuda_mask_mul(gy, mask, gx);
      return {gx};
    }
    OFA_DISPATCH_FLOATING(mask.dtype(), "dropout backward", [&] {
      kernels::cpu::dropout_apply<scalar_t>(gy.data<scalar_t>(), mask.data<scalar_t>(), gx.data<scalar_t>(),
                                            mask.numel());
    });
    return {gx};
  }
  void release() override { mask = Tensor(); }
  std::string name() const override { return "DropoutBackward"; }
};
}  // namespace

Tensor dropout(const Tensor& x_in, double p, bool training, Generator* g) {
  OFA_CHECK(x_in.defined(), "dropout: undefined input");
  OFA_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p = ", p, " is outside [0, 1]");
  if (!training || p == 0.0) return x_in;
  OFA_CHECK(is_floating(x_in.dtype()), "dropout: needs a floating input, got ", dtype_name(x_in.dtype()));
  Tensor x = x_in.is_dense() ? x_in.detach() : x_in.detach().contiguous();
  // Drawn by logical (row-major) position, so the mask for a seed does not
  // depend on the input's memory layout; scaled as PyTorch's noise.div_(1 - p).
  Tensor mask = empty_like(x);
  bernoulli_(mask, 1.0 - p, g);
  if (p < 1.0) mask.mul_(1.0 / (1.0 - p));
  Tensor y = empty_like(x);
  if (x.device().is_cuda()) {
    cuda_mask_mul(x, mask, y);
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), "dropout", [&] {
      kernels::cpu::dropout_apply<scalar_t>(x.data<scalar_t>(), mask.data<scalar_t>(), y.data<scalar_t>(),
                                            x.numel());
    });
  }
  if (any_requires_grad({&x_in})) {
    auto n = std::make_shared<DropoutBackward>();
    n->mask = mask;
    set_history(y, n, {&x_in});
  }
  return y;
}

}  // namespace ofa
