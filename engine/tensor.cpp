#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/common/strided_loop.h"

namespace ofa {

template <> DType dtype_of<float>() { return DType::F32; }
template <> DType dtype_of<double>() { return DType::F64; }
template <> DType dtype_of<int64_t>() { return DType::I64; }

// ------------------------------------------------------------ metadata

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : impl_->shape) n *= s;
  return n;
}

int64_t Tensor::wrap_dim(int64_t d) const {
  const int64_t n = dim();
  OFA_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a ", n, "-D tensor of shape ", shape_str(shape()));
  return d < 0 ? d + n : d;
}

Shape contiguous_strides(const Shape& shape, MemoryFormat f) {
  Shape st(shape.size());
  if (f == MemoryFormat::ChannelsLast) {
    OFA_CHECK(shape.size() == 4, "channels-last needs a 4-D [N, C, H, W] shape, got ", shape_str(shape));
    const int64_t C = shape[1], H = shape[2], W = shape[3];
    st[1] = 1;
    st[3] = std::max<int64_t>(C, 1);
    st[2] = st[3] * std::max<int64_t>(W, 1);
    st[0] = st[2] * std::max<int64_t>(H, 1);
    return st;
  }
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    st[d] = s;
    OFA_CHECK(!__builtin_mul_overflow(s, std::max<int64_t>(shape[d], 1), &s), "shape ", shape_str(shape),
              " overflows 64-bit strides");
  }
  return st;
}

bool Tensor::is_contiguous(MemoryFormat f) const {
  if (f == MemoryFormat::ChannelsLast && dim() != 4) return false;
  const Shape want = contiguous_strides(shape(), f);
  for (int64_t d = 0; d < dim(); ++d)
    if (shape()[d] != 1 && strides()[d] != want[d]) return false;
  return true;
}

bool Tensor::is_dense() const {
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return strides()[a] < strides()[b]; });
  int64_t expect = 1;
  for (int64_t d : order) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expect) return false;
    expect *= shape()[d];
  }
  return true;
}

MemoryFormat Tensor::suggest_memory_format() const {
  if (dim() == 4 && is_contiguous(MemoryFormat::ChannelsLast) && !is_contiguous()) return MemoryFormat::ChannelsLast;
  return MemoryFormat::Contiguous;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(dtype_size(dtype()));
}

template <class T>
T* Tensor::data() const {
  OFA_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() on a ", dtype_name(dtype()), " tensor");
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;

// ------------------------------------------------------------ creation

namespace {
Tensor make_tensor(const Shape& shape, const Shape& strides, DType dtype, Device dev, Allocator* alloc);
}  // namespace

Tensor empty_strided(const Shape& shape, const Shape& strides, DType dtype, Device dev) {
  return make_tensor(shape, strides, dtype, dev, allocator_for(dev));
}

Tensor empty_pinned(const Shape& shape, DType dtype, MemoryFormat f) {
  return make_tensor(shape, contiguous_strides(shape, f), dtype, Device::cpu(), cuda_pinned_allocator());
}

bool Tensor::is_pinned() const { return device().is_cpu() && numel() > 0 && cuda_is_pinned(raw_data()); }

namespace {
Tensor make_tensor(const Shape& shape, const Shape& strides, DType dtype, Device dev, Allocator* alloc) {
  OFA_CHECK(shape.size() == strides.size(), "empty_strided: shape ", shape_str(shape), " and strides ",
            shape_str(strides), " differ in rank");
  int64_t span = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    OFA_CHECK(shape[d] >= 0, "negative size in shape ", shape_str(shape));
    if (shape[d] == 0) span = 0;
  }
  if (span) {
    for (size_t d = 0; d < shape.size(); ++d) {
      int64_t extent = 0;
      OFA_CHECK(!__builtin_mul_overflow(shape[d] - 1, strides[d], &extent) &&
                    !__builtin_add_overflow(span, extent, &span),
                "tensor of shape ", shape_str(shape), " is too large to address");
    }
  }
  OFA_CHECK(static_cast<uint64_t>(span) <= (uint64_t(1) << 62) / dtype_size(dtype), "tensor of shape ",
            shape_str(shape), " is too large to allocate");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(span) * dtype_size(dtype), dev, alloc);
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(impl);
}
}  // namespace

Tensor empty(const Shape& shape, DType dtype, Device dev, MemoryFormat f) {
  return empty_strided(shape, contiguous_strides(shape, f), dtype, dev);
}

Tensor empty_like(const Tensor& like) {
  if (like.is_dense()) return empty_strided(like.shape(), like.strides(), like.dtype(), like.device());
  return empty(like.shape(), like.dtype(), like.device());
}

Tensor zeros(const Shape& shape, DType dtype, Device dev, MemoryFormat f) {
  Tensor t = empty(shape, dtype, dev, f);
  t.fill_(0.0);
  return t;
}
Tensor zeros_like(const Tensor& like) {
  Tensor t = empty_like(like);
  t.fill_(0.0);
  return t;
}
Tensor ones(const Shape& shape, DType dtype, Device dev) { return full(shape, 1.0, dtype, dev); }
Tensor full(const Shape& shape, double v, DType dtype, Device dev) {
  Tensor t = empty(shape, dtype, dev);
  t.fill_(v);
  return t;
}
Tensor scalar_tensor(double v, DType dtype, Device dev) { return full({}, v, dtype, dev); }

Tensor arange(int64_t n, DType dtype, Device dev) {
  Tensor t = empty({n}, dtype, Device::cpu());
  OFA_DISPATCH_ALL(dtype, "arange", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(i);
  });
  return t.to(dev);
}

template <class T>
Tensor from_vector(const std::vector<T>& v, const Shape& shape, Device dev) {
  Tensor t = empty(shape, dtype_of<T>(), Device::cpu());
  OFA_CHECK(static_cast<int64_t>(v.size()) == t.numel(), "from_vector: ", v.size(), " values for shape ",
            shape_str(shape));
  std::copy(v.begin(), v.end(), t.data<T>());
  return t.to(dev);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape r(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    OFA_CHECK(sa == sb || sa == 1 || sb == 1, "shapes ", shape_str(a), " and ", shape_str(b),
              " cannot be broadcast together (dimension ", i, ": ", sa, " vs ", sb, ")");
    r[i] = sa == 1 ? sb : sa;
  }
  return r;
}

// ------------------------------------------------------------ views

namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

// Backward of any view: scatter the gradient into zeros of the base's shape
// through the same view. Used by narrow/slice/select/expand-free views.
struct ViewBackward final : Node {
  Shape base_shape;
  Shape view_shape, view_strides;
  int64_t view_offset = 0;
  std::string op;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor gb = zeros(base_shape, g[0].dtype(), g[0].device());
    // Re-express the view relative to a contiguous base of base_shape.
    Tensor gv = make_view(gb, view_shape, view_strides, view_offset);
    gv.copy_(g[0]);
    return {gb};
  }
  std::string name() const override { return op + "Backward"; }
};

// Views whose geometry maps base strides to view strides; for the gradient we
// rebuild the same view on a contiguous zeros tensor of the base's shape.
Tensor record_view(const Tensor& base, Tensor view, const char* op,
                   const std::function<Tensor(const Tensor&)>& same_view) {
  if (any_requires_grad({&base})) {
    auto node = std::make_shared<ViewBackward>();
    // The same view over a storage-less contiguous base: geometry only.
    auto probe = std::make_shared<TensorImpl>();
    probe->shape = base.shape();
    probe->strides = contiguous_strides(base.shape());
    probe->dtype = base.dtype();
    Tensor pv = same_view(Tensor(probe));
    node->base_shape = base.shape();
    node->view_shape = pv.shape();
    node->view_strides = pv.strides();
    node->view_offset = pv.offset();
    node->op = op;
    set_history(view, node, {&base});
  }
  return view;
}

}  // namespace

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d);
  OFA_CHECK(start >= 0 && length >= 0 && start + length <= size(d), "narrow: [", start, ", ", start + length,
            ") out of range for dimension ", d, " of size ", size(d), " (shape ", shape_str(shape()), ")");
  return slice(d, start, start + length, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d);
  OFA_CHECK(step >= 1, "slice: step must be positive, got ", step);
  start = std::clamp<int64_t>(start < 0 ? start + size(d) : start, 0, size(d));
  end = std::clamp<int64_t>(end < 0 ? end + size(d) : end, start, size(d));
  auto geometry = [=](const Tensor& t) {
    Shape sh = t.shape(), st = t.strides();
    sh[d] = (end - start + step - 1) / step;
    st[d] = t.stride(d) * step;
    return make_view(t, sh, st, t.offset() + start * t.stride(d));
  };
  return record_view(*this, geometry(detach()), "Slice", geometry);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d);
  OFA_CHECK(index >= -size(d) && index < size(d), "select: index ", index, " out of range for dimension ", d,
            " of size ", size(d));
  if (index < 0) index += size(d);
  auto geometry = [=](const Tensor& t) {
    Shape sh = t.shape(), st = t.strides();
    int64_t off = t.offset() + index * st[d];
    sh.erase(sh.begin() + d);
    st.erase(st.begin() + d);
    return make_view(t, sh, st, off);
  };
  return record_view(*this, geometry(detach()), "Select", geometry);
}

Tensor Tensor::permute(const Shape& dims) const {
  OFA_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a ", dim(),
            "-D tensor");
  Shape wd(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    wd[i] = wrap_dim(dims[i]);
    OFA_CHECK(!used[wd[i]], "permute: dimension ", dims[i], " repeated in ", shape_str(dims));
    used[wd[i]] = true;
  }
  auto geometry = [=](const Tensor& t) {
    Shape sh(wd.size()), st(wd.size());
    for (size_t i = 0; i < wd.size(); ++i) {
      sh[i] = t.shape()[wd[i]];
      st[i] = t.strides()[wd[i]];
    }
    return make_view(t, sh, st, t.offset());
  };
  return record_view(*this, geometry(detach()), "Permute", geometry);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Shape p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0)], p[wrap_dim(d1)]);
  return permute(p);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  OFA_CHECK(d >= -dim() - 1 && d <= dim(), "unsqueeze: dimension ", d, " out of range for a ", dim(), "-D tensor");
  if (d < 0) d += dim() + 1;
  Shape sh = shape();
  sh.insert(sh.begin() + d, 1);
  return view(sh);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d);
  if (size(d) != 1) return *this;
  Shape sh = shape();
  sh.erase(sh.begin() + d);
  return view(sh);
}

Tensor Tensor::expand(const Shape& target) const {
  OFA_CHECK(target.size() >= shape().size(), "expand: target ", shape_str(target), " has fewer dims than ",
            shape_str(shape()));
  const size_t lead = target.size() - shape().size();
  Shape sh(target.size()), st(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      OFA_CHECK(target[i] >= 0, "expand: -1 not allowed in a new leading dimension");
      sh[i] = target[i];
      st[i] = 0;
      continue;
    }
    int64_t cur = shape()[i - lead], want = target[i] == -1 ? cur : target[i];
    OFA_CHECK(cur == want || cur == 1, "expand: cannot expand ", shape_str(shape()), " to ", shape_str(target));
    sh[i] = want;
    st[i] = cur == want ? strides()[i - lead] : 0;
  }
  Tensor v = make_view(*this, sh, st, offset());
  if (any_requires_grad({this})) {
    // Gradient of a broadcast: sum over the expanded dimensions.
    struct ExpandBackward final : Node {
      Shape in_shape;
      std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {sum_to(g[0], in_shape)}; }
      std::string name() const override { return "ExpandBackward"; }
    };
    auto node = std::make_shared<ExpandBackward>();
    node->in_shape = shape();
    set_history(v, node, {this});
  }
  return v;
}

namespace {
// Strides for `target` over the same memory as (shape, strides), or empty when
// the reshape needs a copy (PyTorch's computeStride rule).
bool view_strides(const Shape& shape, const Shape& strides, const Shape& target, Shape& out) {
  out.assign(target.size(), 0);
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (numel == 0 || shape.empty()) {
    out = contiguous_strides(target);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= shape[td];
    if (td == 0 || (shape[td - 1] != 1 && strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_shape(const Shape& target, int64_t numel, const Shape& from) {
  Shape r = target;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i] == -1) {
      OFA_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(target));
      infer = static_cast<int64_t>(i);
    } else {
      known *= r[i];
    }
  }
  if (infer >= 0) {
    OFA_CHECK(known > 0 && numel % known == 0, "reshape: cannot reshape ", shape_str(from), " to ", shape_str(target));
    r[infer] = numel / known;
  }
  int64_t n = 1;
  for (int64_t s : r) n *= s;
  OFA_CHECK(n == numel, "reshape: cannot reshape ", shape_str(from), " (", numel, " elements) to ", shape_str(target));
  return r;
}

struct ReshapeBackward final : Node {
  Shape in_shape;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].reshape(in_shape)}; }
  std::string name() const override { return "ReshapeBackward"; }
};
}  // namespace

Tensor Tensor::view(const Shape& target) const {
  Shape sh = infer_shape(target, numel(), shape());
  Shape st;
  OFA_CHECK(view_strides(shape(), strides(), sh, st), "view: shape ", shape_str(shape()), " with strides ",
            shape_str(strides()), " cannot be viewed as ", shape_str(sh), " without a copy; use reshape()");
  Tensor v = make_view(*this, sh, st, offset());
  if (any_requires_grad({this})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->in_shape = shape();
    set_history(v, node, {this});
  }
  return v;
}

Tensor Tensor::reshape(const Shape& target) const {
  Shape sh = infer_shape(target, numel(), shape());
  Shape st;
  if (view_strides(shape(), strides(), sh, st)) return view(sh);
  return contiguous().view(sh);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start);
  end = wrap_dim(end);
  Shape sh;
  for (int64_t d = 0; d < start; ++d) sh.push_back(size(d));
  int64_t m = 1;
  for (int64_t d = start; d <= end; ++d) m *= size(d);
  sh.push_back(m);
  for (int64_t d = end + 1; d < dim(); ++d) sh.push_back(size(d));
  return reshape(sh);
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

namespace {
struct CopyBackward final : Node {
  DType in_dtype;
  Device in_device;
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].to(in_dtype).to(in_device)}; }
  std::string name() const override { return "CopyBackward"; }
};
}  // namespace

Tensor Tensor::clone(MemoryFormat f) const {
  Tensor out = empty(shape(), dtype(), device(), f);
  out.detach().copy_(*this);
  if (any_requires_grad({this})) {
    auto node = std::make_shared<CopyBackward>();
    node->in_dtype = dtype();
    node->in_device = device();
    set_history(out, node, {this});
  }
  return out;
}

Tensor Tensor::contiguous(MemoryFormat f) const {
  if (is_contiguous(f)) return *this;
  return clone(f);
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), d);
  copy_bytes(out.raw_data(), d, src.raw_data(), src.device(), static_cast<size_t>(numel()) * dtype_size(dtype()));
  if (any_requires_grad({this})) {
    auto node = std::make_shared<CopyBackward>();
    node->in_dtype = dtype();
    node->in_device = device();
    set_history(out, node, {this});
  }
  return out;
}

Tensor Tensor::to(Device d, bool non_blocking) const {
  if (!non_blocking || !d.is_cuda() || !device().is_cpu() || !is_dense() || !is_pinned()) return to(d);
  Tensor out = empty_strided(shape(), strides(), dtype(), d);
  const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  kernels::Stream s = cuda_stream(d.index);
  cuda_backend().memcpy_async(out.raw_data(), raw_data(), bytes, kernels::CopyKind::HostToDevice, s);
  cuda_pinned_record(raw_data(), s);  // the buffer stays unreused until the copy is done
  if (any_requires_grad({this})) {
    auto node = std::make_shared<CopyBackward>();
    node->in_dtype = dtype();
    node->in_device = device();
    set_history(out, node, {this});
  }
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), t, device());
  out.copy_(*this);
  if (any_requires_grad({this}) && is_floating(t)) {
    auto node = std::make_shared<CopyBackward>();
    node->in_dtype = dtype();
    node->in_device = device();
    set_history(out, node, {this});
  }
  return out;
}

// ------------------------------------------------------------ autograd entry

Tensor& Tensor::set_requires_grad(bool r) {
  OFA_CHECK(!r || is_floating(dtype()), "requires_grad on a ", dtype_name(dtype()), " tensor: only floating tensors have gradients");
  OFA_CHECK(is_leaf(), "set_requires_grad on a computed tensor; call detach() first");
  impl_->requires_grad = r;
  return *this;
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  run_backward(*this, grad_output, retain_graph);
}

void Tensor::zero_grad() {
  if (impl_->grad) Tensor(impl_->grad).zero_();
}

// ------------------------------------------------------------ in-place

void Tensor::check_inplace(const char* op) const {
  OFA_CHECK(!(GradMode::enabled() && requires_grad()), op,
            ": in-place change of a tensor that requires grad while grad mode is on; use NoGradGuard");
}

Tensor& Tensor::fill_(double v) {
  check_inplace("fill_");
  if (device().is_cuda()) {
    if (numel() == 0) return *this;
    cuda_backend().fill(dtype(), raw_data(), cuda_args<1>("fill_", shape(), {strides()}), v, cuda_stream(device().index));
    return *this;
  }
  OFA_DISPATCH_ALL(dtype(), "fill_", [&] {
    const scalar_t x = static_cast<scalar_t>(v);
    scalar_t* base = data<scalar_t>();
    kernels::StridedLayout<1> L{shape(), {strides()}};
    kernels::for_each_strided<1>(L, [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& s) {
      scalar_t* p = base + off[0];
      for (int64_t i = 0; i < n; ++i) p[i * s[0]] = x;
    });
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src_in) {
  check_inplace("copy_");
  Tensor src = src_in.detach();
  if (src.shape() != shape()) src = src.expand(shape());
  if (src.device() != device()) {
    // Cross-device: stage through a contiguous tensor on the destination.
    Tensor c = src.contiguous();
    Tensor staged = empty(shape(), src.dtype(), device());
    copy_bytes(staged.raw_data(), device(), c.raw_data(), c.device(), static_cast<size_t>(numel()) * dtype_size(src.dtype()));
    return copy_(staged);
  }
  if (device().is_cuda()) {
    if (numel() == 0) return *this;
    cuda_backend().copy(dtype(), raw_data(), src.dtype(), src.raw_data(),
                        cuda_args<2>("copy_", shape(), {strides(), src.strides()}), cuda_stream(device().index));
    return *this;
  }
  OFA_DISPATCH_ALL(dtype(), "copy_", [&] {
    using dst_t = scalar_t;
    dst_t* dbase = data<dst_t>();
    OFA_DISPATCH_ALL(src.dtype(), "copy_", [&] {
      const scalar_t* sbase = src.data<scalar_t>();
      kernels::StridedLayout<2> L{shape(), {strides(), src.strides()}};
      kernels::for_each_strided<2>(L, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& s) {
        dst_t* d = dbase + off[0];
        const scalar_t* p = sbase + off[1];
        if (s[0] == 1 && s[1] == 1) {
          for (int64_t i = 0; i < n; ++i) d[i] = static_cast<dst_t>(p[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) d[i * s[0]] = static_cast<dst_t>(p[i * s[1]]);
        }
      });
    });
  });
  return *this;
}

Tensor& Tensor::add_(const Tensor& other_in, double alpha) {
  check_inplace("add_");
  OFA_CHECK_SAME_DEVICE("add_", *this, other_in);
  OFA_CHECK(dtype() == other_in.dtype(), "add_: dtype ", dtype_name(dtype()), " += ", dtype_name(other_in.dtype()));
  Tensor other = other_in.detach();
  if (other.shape() != shape()) other = other.expand(shape());
  if (device().is_cuda()) {
    if (numel() == 0) return *this;
    cuda_backend().axpy(dtype(), raw_data(), other.raw_data(), alpha,
                        cuda_args<2>("add_", shape(), {strides(), other.strides()}), cuda_stream(device().index));
    return *this;
  }
  OFA_DISPATCH_ALL(dtype(), "add_", [&] {  // int64 too: counters such as num_batches_tracked
    scalar_t* dbase = data<scalar_t>();
    const scalar_t* obase = other.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    kernels::StridedLayout<2> L{shape(), {strides(), other.strides()}};
    kernels::for_each_strided<2>(L, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& s) {
      scalar_t* d = dbase + off[0];
      const scalar_t* p = obase + off[1];
      for (int64_t i = 0; i < n; ++i) d[i * s[0]] += a * p[i * s[1]];
    });
  });
  return *this;
}

Tensor& Tensor::mul_(double v) {
  check_inplace("mul_");
  if (device().is_cuda()) {
    if (numel() == 0) return *this;
    cuda_backend().scale(dtype(), raw_data(), v, cuda_args<1>("mul_", shape(), {strides()}), cuda_stream(device().index));
    return *this;
  }
  OFA_DISPATCH_FLOATING(dtype(), "mul_", [&] {
    scalar_t* base = data<scalar_t>();
    const scalar_t x = static_cast<scalar_t>(v);
    kernels::StridedLayout<1> L{shape(), {strides()}};
    kernels::for_each_strided<1>(L, [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& s) {
      scalar_t* p = base + off[0];
      for (int64_t i = 0; i < n; ++i) p[i * s[0]] *= x;
    });
  });
  return *this;
}

// ------------------------------------------------------------ host helpers

double Tensor::item() const {
  OFA_CHECK(numel() == 1, "item(): tensor has ", numel(), " elements (shape ", shape_str(shape()), ")");
  Tensor h = to(Device::cpu());
  return OFA_DISPATCH_ALL(dtype(), "item", [&] { return static_cast<double>(*h.data<scalar_t>()); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor h = detach().to(Device::cpu()).to(dtype_of<T>()).contiguous();
  const T* p = h.data<T>();
  return std::vector<T>(p, p + numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

std::string Tensor::str(int64_t max_elems) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << shape_str(shape()) << ", " << dtype_name(dtype()) << ", " << device().str() << ") [";
  std::vector<double> v = to_vector<double>();
  for (int64_t i = 0; i < std::min<int64_t>(max_elems, numel()); ++i) os << (i ? ", " : "") << v[i];
  if (numel() > max_elems) os << ", ...";
  os << "]";
  return os.str();
}

}  // namespace ofa
