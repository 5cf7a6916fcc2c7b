// defines: sum, mean (all elements or over dims), sum_to
#include <algorithm>

#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/cpu/reduce.h"

namespace ofa {

namespace {

struct SumBackward final : Node {
  Shape in_shape, kept_shape;  // kept_shape: the output with reduced dims as 1
  double scale = 1.0;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor gk = g[0].reshape(kept_shape).expand(in_shape);
    Tensor gx = empty(in_shape, g[0].dtype(), g[0].device());
    gx.copy_(gk);
    if (scale != 1.0) gx.mul_(scale);
    return {gx};
  }
  std::string name() const override { return "SumBackward"; }
};

Tensor reduce(const Tensor& x, Shape dims, bool keepdim, bool is_mean, const char* name) {
  OFA_CHECK(x.defined(), name, ": undefined input");
  std::vector<bool> red(x.dim(), false);
  for (int64_t& d : dims) {
    d = x.wrap_dim(d);
    OFA_CHECK(!red[d], name, ": dimension ", d, " listed twice");
    red[d] = true;
  }
  Shape keep_shape, keep_strides, red_shape, red_strides, out_shape, kept_shape;
  int64_t n_red = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (red[d]) {
      red_shape.push_back(x.size(d));
      red_strides.push_back(x.stride(d));
      n_red *= x.size(d);
      kept_shape.push_back(1);
      if (keepdim) out_shape.push_back(1);
    } else {
      keep_shape.push_back(x.size(d));
      keep_strides.push_back(x.stride(d));
      kept_shape.push_back(x.size(d));
      out_shape.push_back(x.size(d));
    }
  }
  const double scale = is_mean ? (n_red > 0 ? 1.0 / static_cast<double>(n_red) : 0.0) : 1.0;
  Tensor out = empty(out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    // The output is contiguous: its strides over the kept dims are row-major.
    Shape out_strides(keep_shape.size());
    for (int64_t d = static_cast<int64_t>(keep_shape.size()) - 1, st = 1; d >= 0; --d) {
      out_strides[d] = st;
      st *= keep_shape[d];
    }
    if (out.numel() > 0) {
      CudaScratch scratch(x.device().index);
      cuda_backend().reduce_sum(x.dtype(), x.raw_data(), cuda_args<2>(name, keep_shape, {keep_strides, out_strides}),
                                cuda_args<1>(name, red_shape, {red_strides}), out.raw_data(), scale, scratch,
                                cuda_stream(x.device().index));
    }
  } else {
    OFA_DISPATCH_FLOATING(x.dtype(), name, [&] {
      kernels::cpu::reduce_sum<scalar_t>(x.data<scalar_t>(), keep_shape, keep_strides, red_shape, red_strides,
                                         out.data<scalar_t>(), scale);
    });
  }
  if (any_requires_grad({&x})) {
    auto n = std::make_shared<SumBackward>();
    n->in_shape = x.shape();
    n->kept_shape = kept_shape;
    n->scale = scale;
    set_history(out, n, {&x});
  }
  return out;
}

Shape all_dims(const Tensor& x) {
  Shape d(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) d[i] = i;
  return d;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce(x, all_dims(x), false, false, "sum"); }
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) { return reduce(x, dims, keepdim, false, "sum"); }
Tensor mean(const Tensor& x) { return reduce(x, all_dims(x), false, true, "mean"); }
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) { return reduce(x, dims, keepdim, true, "mean"); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  OFA_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot sum ", shape_str(x.shape()), " to ", shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  Shape dims;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    if (d < lead) {
      dims.push_back(static_cast<int64_t>(d));
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(static_cast<int64_t>(d));
    } else {
      OFA_CHECK(shape[d - lead] == x.shape()[d], "sum_to: cannot sum ", shape_str(x.shape()), " to ", shape_str(shape));
    }
  }
  return reduce(x, dims, true, false, "sum_to").reshape(shape);
}

}  // namespace ofa
