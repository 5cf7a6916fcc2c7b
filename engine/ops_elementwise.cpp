// defines: add, sub, mul (broadcasting, and with a scalar), relu, relu6, hswish, hsigmoid
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/binary.h"

namespace ofa {

namespace {

using kernels::Act;
using kernels::cpu::BinOp;

// Output of a broadcast op: laid out like an input that already has the
// output's shape (so channels-last stays channels-last), else contiguous.
Tensor broadcast_output(const Tensor& a, const Tensor& b, const Shape& out_shape) {
  if (a.shape() == out_shape && a.is_dense()) return empty_like(a);
  if (b.shape() == out_shape && b.is_dense()) return empty_like(b);
  return empty(out_shape, a.dtype(), a.device());
}

Tensor binary_forward(BinOp op, const char* name, const Tensor& a, const Tensor& b) {
  OFA_CHECK(a.defined() && b.defined(), name, ": undefined input");
  OFA_CHECK_SAME_DEVICE(name, a, b);
  OFA_CHECK(a.dtype() == b.dtype(), name, ": dtypes differ (", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), ")");
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = broadcast_output(a, b, out_shape);
  Tensor ae = a.detach().expand(out_shape), be = b.detach().expand(out_shape);
  if (a.device().is_cuda()) {
    if (out.numel() > 0)
      cuda_backend().binary(op, a.dtype(), out.raw_data(), ae.raw_data(), be.raw_data(),
                            cuda_args<3>(name, out_shape, {out.strides(), ae.strides(), be.strides()}),
                            cuda_stream(a.device().index));
    return out;
  }
  OFA_DISPATCH_FLOATING(a.dtype(), name, [&] {
    kernels::cpu::binary_strided<scalar_t>(op, out_shape, out.data<scalar_t>(), out.strides(), ae.data<scalar_t>(),
                                           ae.strides(), be.data<scalar_t>(), be.strides());
  });
  return out;
}

struct AddBackward final : Node {
  Shape a_shape, b_shape;
  double b_sign = 1.0;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor gb = sum_to(g[0], b_shape);
    return {sum_to(g[0], a_shape), b_sign == 1.0 ? gb : mul(gb, b_sign)};
  }
  std::string name() const override { return b_sign == 1.0 ? "AddBackward" : "SubBackward"; }
};

struct MulBackward final : Node {
  Tensor a, b;  // detached
  bool need_a = false, need_b = false;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(a.defined(), "MulBackward: saved tensors were freed by an earlier backward; pass retain_graph=true");
    return {need_a ? sum_to(mul(g[0], b), a.shape()) : Tensor(), need_b ? sum_to(mul(g[0], a), b.shape()) : Tensor()};
  }
  void release() override { a = b = Tensor(); }
  std::string name() const override { return "MulBackward"; }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinOp::Add, "add", a, b);
  if (any_requires_grad({&a, &b})) {
    auto n = std::make_shared<AddBackward>();
    n->a_shape = a.shape();
    n->b_shape = b.shape();
    set_history(out, n, {&a, &b});
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinOp::Sub, "sub", a, b);
  if (any_requires_grad({&a, &b})) {
    auto n = std::make_shared<AddBackward>();
    n->a_shape = a.shape();
    n->b_shape = b.shape();
    n->b_sign = -1.0;
    set_history(out, n, {&a, &b});
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinOp::Mul, "mul", a, b);
  if (any_requires_grad({&a, &b})) {
    auto n = std::make_shared<MulBackward>();
    n->a = a.detach();
    n->b = b.detach();
    n->need_a = a.requires_grad();
    n->need_b = b.requires_grad();
    set_history(out, n, {&a, &b});
  }
  return out;
}

namespace {
Tensor scalar_forward(kernels::cpu::ScalarOp op, const char* name, const Tensor& a, double s) {
  Tensor x = a.is_dense() ? a.detach() : a.detach().contiguous();
  Tensor out = empty_like(x);
  if (x.device().is_cuda()) {
    cuda_backend().scalar_op(op, x.dtype(), x.raw_data(), s, out.raw_data(), x.numel(), cuda_stream(x.device().index));
    return out;
  }
  OFA_DISPATCH_FLOATING(x.dtype(), name, [&] {
    kernels::cpu::scalar_op<scalar_t>(op, x.data<scalar_t>(), static_cast<scalar_t>(s), out.data<scalar_t>(), x.numel());
  });
  return out;
}

struct ScaleBackward final : Node {
  double s = 1.0;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {s == 1.0 ? g[0] : mul(g[0], s)}; }
  std::string name() const override { return "ScaleBackward"; }
};
}  // namespace

Tensor mul(const Tensor& a, double s) {
  Tensor out = scalar_forward(kernels::cpu::ScalarOp::Mul, "mul", a, s);
  if (any_requires_grad({&a})) {
    auto n = std::make_shared<ScaleBackward>();
    n->s = s;
    set_history(out, n, {&a});
  }
  return out;
}

Tensor add(const Tensor& a, double s) {
  Tensor out = scalar_forward(kernels::cpu::ScalarOp::Add, "add", a, s);
  if (any_requires_grad({&a})) set_history(out, std::make_shared<ScaleBackward>(), {&a});
  return out;
}

// ---------------------------------------------------------------- activations

namespace {

using kernels::act_name;

struct ActivationBackward final : Node {
  Act act = Act::Relu;
  Tensor x;  // detached input
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(x.defined(), act_name(act), " backward: saved input was freed; pass retain_graph=true");
    Tensor gy = g[0].strides() == x.strides() ? g[0] : empty_like(x).copy_(g[0]);
    Tensor gx = empty_like(x);
    if (x.device().is_cuda()) {
      cuda_backend().activation_backward(act, x.dtype(), x.raw_data(), gy.raw_data(), gx.raw_data(), x.numel(),
                                         cuda_stream(x.device().index));
      return {gx};
    }
    OFA_DISPATCH_FLOATING(x.dtype(), act_name(act), [&] {
      kernels::cpu::activation_backward<scalar_t>(act, x.data<scalar_t>(), gy.data<scalar_t>(), gx.data<scalar_t>(),
                                                  x.numel());
    });
    return {gx};
  }
  void release() override { x = Tensor(); }
  std::string name() const override { return std::string(act_name(act)) + "Backward"; }
};

Tensor activation(Act act, const Tensor& in) {
  OFA_CHECK(in.defined(), act_name(act), ": undefined input");
  Tensor x = in.is_dense() ? in.detach() : in.detach().contiguous();
  Tensor y = empty_like(x);
  if (x.device().is_cuda()) {
    cuda_backend().activation_forward(act, x.dtype(), x.raw_data(), y.raw_data(), x.numel(),
                                      cuda_stream(x.device().index));
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), act_name(act), [&] {
      kernels::cpu::activation_forward<scalar_t>(act, x.data<scalar_t>(), y.data<scalar_t>(), x.numel());
    });
  }
  if (any_requires_grad({&in})) {
    auto n = std::make_shared<ActivationBackward>();
    n->act = act;
    n->x = x;
    set_history(y, n, {&in});
  }
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) { return activation(Act::Relu, x); }
Tensor relu6(const Tensor& x) { return activation(Act::Relu6, x); }
Tensor hswish(const Tensor& x) { return activation(Act::HSwish, x); }
Tensor hsigmoid(const Tensor& x) { return activation(Act::HSigmoid, x); }

}  // namespace ofa
