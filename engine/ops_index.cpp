// defines: index_select, gather, argsort, topk_accuracy
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/cpu/index.h"

namespace ofa {

namespace {

void split_at(const Shape& s, int64_t d, int64_t* outer, int64_t* D, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < d; ++i) *outer *= s[i];
  for (int64_t i = d + 1; i < static_cast<int64_t>(s.size()); ++i) *inner *= s[i];
  *D = s[d];
}

int64_t checked_dim(const char* nm, const Tensor& x, int64_t dim) {
  OFA_CHECK(x.dim() >= 1, nm, ": needs at least one dimension, got a 0-D tensor");
  OFA_CHECK(dim >= -x.dim() && dim < x.dim(), nm, ": dim ", dim, " is out of range for shape ", shape_str(x.shape()));
  return x.wrap_dim(dim);
}

// Every index must address an element of dimension d (size `size`) of x.
void check_index_values(const char* nm, const Tensor& index, int64_t size, int64_t d, const Tensor& x) {
  const int64_t* p = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    OFA_CHECK(p[i] >= 0 && p[i] < size, nm, ": index ", p[i], " (at flat position ", i,
              ") is out of range for dimension ", d, " of size ", size, " (input shape ", shape_str(x.shape()), ")");
}

// The element type the CUDA kernels move data as: index_select and gather
// only copy values, so int64 data travels as 8-byte float64 words (loads and
// stores keep every bit pattern; no arithmetic touches them).
DType cuda_move_type(const char* nm, DType t) {
  if (t == DType::I64) return DType::F64;
  OFA_CHECK(is_floating(t), nm, ": unsupported dtype ", dtype_name(t), " on CUDA");
  return t;
}

kernels::CudaBackend::GatherArgs gather_args(const Shape& index_shape, const Shape& x_shape, const Shape& x_strides,
                                             int64_t dim) {
  kernels::CudaBackend::GatherArgs a{};
  OFA_CHECK(index_shape.size() <= static_cast<size_t>(kernels::kMaxDims), "gather: index of shape ",
            shape_str(index_shape), " has more than ", kernels::kMaxDims, " dims (CUDA)");
  a.nd = static_cast<int>(index_shape.size());
  a.dim = static_cast<int>(dim);
  for (int i = 0; i < a.nd; ++i) {
    a.shape[i] = index_shape[i];
    a.x_strides[i] = x_strides[i];
    a.x_shape[i] = x_shape[i];
  }
  a.x_dim_size = x_shape[dim];
  return a;
}

struct IndexSelectBackward final : Node {
  Shape in_shape;
  DType dtype = DType::F32;
  int64_t dim = 0;
  Tensor index;  // contiguous int64 [K]
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(index.defined(), "index_select backward: saved index was freed by an earlier backward; pass retain_graph=true");
    Tensor gy = g[0].contiguous();
    Tensor gx = empty(in_shape, dtype, gy.device());
    int64_t outer, D, inner;
    split_at(in_shape, dim, &outer, &D, &inner);
    if (gy.device().is_cuda()) {
      cuda_backend().index_select_backward(dtype, gy.raw_data(), outer, D, inner, index.data<int64_t>(),
                                           index.numel(), gx.raw_data(), cuda_stream(gy.device().index));
      return {gx};
    }
    OFA_DISPATCH_FLOATING(dtype, "index_select backward", [&] {
      kernels::cpu::index_select_backward<scalar_t>(gy.data<scalar_t>(), outer, D, inner, index.data<int64_t>(),
                                                    index.numel(), gx.data<scalar_t>());
    });
    return {gx};
  }
  void release() override { index = Tensor(); }
  std::string name() const override { return "IndexSelectBackward"; }
};

}  // namespace

Tensor index_select(const Tensor& x_in, int64_t dim, const Tensor& index_in) {
  const char* nm = "index_select";
  OFA_CHECK(x_in.defined() && index_in.defined(), nm, ": undefined input or index");
  const int64_t d = checked_dim(nm, x_in, dim);
  OFA_CHECK(index_in.dtype() == DType::I64 && index_in.dim() == 1, nm, ": index must be a 1-D int64 tensor, got ",
            dtype_name(index_in.dtype()), " of shape ", shape_str(index_in.shape()));
  OFA_CHECK_SAME_DEVICE(nm, x_in, index_in);
  // A private copy: the backward must see the indices of the forward.
  Tensor index = index_in.detach().clone();
  const bool cuda = x_in.device().is_cuda();
  if (!cuda) check_index_values(nm, index, x_in.size(d), d, x_in);  // on CUDA: by the kernel
  Tensor x = x_in.detach().contiguous();
  Shape out_shape = x.shape();
  out_shape[d] = index.numel();
  Tensor out = empty(out_shape, x.dtype(), x.device());
  int64_t outer, D, inner;
  split_at(x.shape(), d, &outer, &D, &inner);
  if (cuda) {
    const int dev = x.device().index;
    cuda_backend().index_select_forward(cuda_move_type(nm, x.dtype()), x.raw_data(), outer, D, inner,
                                        index.data<int64_t>(), index.numel(), out.raw_data(), cuda_error_record(dev),
                                        cuda_stream(dev));
  } else {
    OFA_DISPATCH_ALL(x.dtype(), nm, [&] {
      kernels::cpu::index_select_forward<scalar_t>(x.data<scalar_t>(), outer, D, inner, index.data<int64_t>(),
                                                   index.numel(), out.data<scalar_t>());
    });
  }
  if (any_requires_grad({&x_in})) {
    auto n = std::make_shared<IndexSelectBackward>();
    n->in_shape = x.shape();
    n->dtype = x.dtype();
    n->dim = d;
    n->index = index;
    set_history(out, n, {&x_in});
  }
  return out;
}

// ---------------------------------------------------------------- gather

namespace {
struct GatherBackward final : Node {
  Shape in_shape;
  DType dtype = DType::F32;
  int64_t dim = 0;
  Tensor index;  // contiguous int64, the output's shape
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    OFA_CHECK(index.defined(), "gather backward: saved index was freed by an earlier backward; pass retain_graph=true");
    Tensor gy = g[0].contiguous();
    if (gy.device().is_cuda()) {
      Tensor gx = empty(in_shape, dtype, gy.device());  // fully written by the kernel
      cuda_backend().gather_backward(dtype, gy.raw_data(), index.data<int64_t>(),
                                     gather_args(index.shape(), in_shape, gx.strides(), dim), gx.raw_data(),
                                     cuda_stream(gy.device().index));
      return {gx};
    }
    Tensor gx = zeros(in_shape, dtype, gy.device());
    OFA_DISPATCH_FLOATING(dtype, "gather backward", [&] {
      kernels::cpu::gather_backward<scalar_t>(gy.data<scalar_t>(), index.data<int64_t>(), index.shape(), dim,
                                              gx.data<scalar_t>(), gx.strides());
    });
    return {gx};
  }
  void release() override { index = Tensor(); }
  std::string name() const override { return "GatherBackward"; }
};
}  // namespace

Tensor gather(const Tensor& x_in, int64_t dim, const Tensor& index_in) {
  const char* nm = "gather";
  OFA_CHECK(x_in.defined() && index_in.defined(), nm, ": undefined input or index");
  const int64_t d = checked_dim(nm, x_in, dim);
  OFA_CHECK(index_in.dtype() == DType::I64, nm, ": index must be int64, got ", dtype_name(index_in.dtype()));
  OFA_CHECK(index_in.dim() == x_in.dim(), nm, ": index of shape ", shape_str(index_in.shape()),
            " must have the rank of the input ", shape_str(x_in.shape()));
  for (int64_t i = 0; i < x_in.dim(); ++i)
    OFA_CHECK(i == d || index_in.size(i) <= x_in.size(i), nm, ": index of shape ", shape_str(index_in.shape()),
              " is larger than the input ", shape_str(x_in.shape()), " in dimension ", i,
              " (only dimension ", d, " may differ)");
  OFA_CHECK_SAME_DEVICE(nm, x_in, index_in);
  Tensor index = index_in.detach().clone();
  const bool cuda = x_in.device().is_cuda();
  if (!cuda) check_index_values(nm, index, x_in.size(d), d, x_in);  // on CUDA: by the kernel
  Tensor x = x_in.detach();  // read through its strides
  Tensor out = empty(index.shape(), x.dtype(), x.device());
  if (cuda) {
    const int dev = x.device().index;
    if (out.numel() > 0)
      cuda_backend().gather_forward(cuda_move_type(nm, x.dtype()), x.raw_data(), index.data<int64_t>(),
                                    gather_args(index.shape(), x.shape(), x.strides(), d), out.raw_data(),
                                    cuda_error_record(dev), cuda_stream(dev));
  } else {
    OFA_DISPATCH_ALL(x.dtype(), nm, [&] {
      kernels::cpu::gather_forward<scalar_t>(x.data<scalar_t>(), x.strides(), index.data<int64_t>(), index.shape(),
                                             d, out.data<scalar_t>());
    });
  }
  if (any_requires_grad({&x_in})) {
    auto n = std::make_shared<GatherBackward>();
    n->in_shape = x.shape();
    n->dtype = x.dtype();
    n->dim = d;
    n->index = index;
    set_history(out, n, {&x_in});
  }
  return out;
}

// ---------------------------------------------------------------- sorting

Tensor argsort(const Tensor& x_in, int64_t dim, bool descending) {
  const char* nm = "argsort";
  OFA_CHECK(x_in.defined(), nm, ": undefined input");
  const int64_t d = checked_dim(nm, x_in, dim);
  Tensor x = x_in.detach().contiguous();
  Tensor out = empty(x.shape(), DType::I64, x.device());
  int64_t outer, K, inner;
  split_at(x.shape(), d, &outer, &K, &inner);
  if (x.device().is_cuda()) {
    OFA_CHECK(is_floating(x.dtype()), nm, ": CUDA sorts float32 and float64 values, got ", dtype_name(x.dtype()),
              "; sort on the CPU or convert with .to(DType::F64)");
    if (x.numel() > 0)
      cuda_backend().argsort(x.dtype(), x.raw_data(), outer, K, inner, descending, out.data<int64_t>(),
                             cuda_stream(x.device().index));
    return out;
  }
  OFA_DISPATCH_ALL(x.dtype(), nm, [&] {
    kernels::cpu::argsort<scalar_t>(x.data<scalar_t>(), outer, K, inner, descending, out.data<int64_t>());
  });
  return out;  // indices: no gradient
}

std::vector<double> topk_accuracy(const Tensor& logits_in, const Tensor& target_in, const std::vector<int64_t>& ks) {
  const char* nm = "topk_accuracy";
  OFA_CHECK(logits_in.defined() && target_in.defined(), nm, ": undefined logits or target");
  OFA_CHECK(logits_in.dim() == 2, nm, ": logits must be [N, K], got shape ", shape_str(logits_in.shape()));
  const int64_t N = logits_in.size(0), K = logits_in.size(1);
  OFA_CHECK(N > 0, nm, ": empty batch (logits of shape ", shape_str(logits_in.shape()), ")");
  OFA_CHECK(target_in.dtype() == DType::I64 && target_in.dim() == 1 && target_in.size(0) == N, nm,
            ": target must be int64 [", N, "] for logits ", shape_str(logits_in.shape()), ", got ",
            dtype_name(target_in.dtype()), " of shape ", shape_str(target_in.shape()));
  for (int64_t k : ks)
    OFA_CHECK(k >= 1 && k <= K, nm, ": k = ", k, " is out of range for ", K, " classes (logits ",
              shape_str(logits_in.shape()), ")");
  OFA_CHECK_SAME_DEVICE(nm, logits_in, target_in);
  Tensor target = target_in.detach().contiguous();
  Tensor x = logits_in.detach().contiguous();
  std::vector<int64_t> correct;
  if (x.device().is_cuda()) {
    // Ranks on the device, counted on the host (the copy synchronises and
    // raises a recorded bad target).
    const int dev = x.device().index;
    Tensor rank = empty({N}, DType::I64, x.device());
    cuda_backend().topk_rank(x.dtype(), x.raw_data(), target.data<int64_t>(), N, K, rank.data<int64_t>(),
                             cuda_error_record(dev), cuda_stream(dev));
    Tensor rh = rank.to(Device::cpu());
    cuda_check_errors(dev);
    const int64_t* r = rh.data<int64_t>();
    correct.assign(ks.size(), 0);
    for (size_t i = 0; i < ks.size(); ++i)
      for (int64_t n = 0; n < N; ++n) correct[i] += r[n] < ks[i] ? 1 : 0;
  } else {
    check_index_values(nm, target, K, 1, logits_in);
    OFA_DISPATCH_FLOATING(x.dtype(), nm, [&] {
      kernels::cpu::topk_correct<scalar_t>(x.data<scalar_t>(), target.data<int64_t>(), N, K, ks, correct);
    });
  }
  std::vector<double> res(ks.size());
  for (size_t i = 0; i < ks.size(); ++i) res[i] = 100.0 * static_cast<double>(correct[i]) / static_cast<double>(N);
  return res;
}

}  // namespace ofa
