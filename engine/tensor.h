// Tensor: a strided view of a Storage, with the autograd fields it needs.
//
// Shapes follow PyTorch (activations are [N, C, H, W]); strides say how they
// lie in memory, so channels-last activations are simply NCHW tensors with
// NHWC strides. Views (narrow, permute, expand, ...) share the storage.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/common.h"
#include "engine/storage.h"

namespace ofa {

class Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;

  // Autograd. A leaf that requires grad owns `grad`; a computed tensor points
  // at the node that made it (output `output_nr` of that node).
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  uint32_t output_nr = 0;
  std::weak_ptr<Node> grad_accumulator;  // cached AccumulateGrad of a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- metadata
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const { return impl_->shape[wrap_dim(d)]; }
  int64_t stride(int64_t d) const { return impl_->strides[wrap_dim(d)]; }
  int64_t offset() const { return impl_->offset; }
  int64_t numel() const;
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  int64_t wrap_dim(int64_t d) const;  // negative dims count from the end

  // Row-major contiguous, or NHWC-contiguous for ChannelsLast (4-D only).
  bool is_contiguous(MemoryFormat f = MemoryFormat::Contiguous) const;
  // Covers its storage range without holes or overlaps in some dimension
  // order (any permutation of a contiguous tensor).
  bool is_dense() const;
  // ChannelsLast when 4-D and NHWC-contiguous (and not also row-major), else Contiguous.
  MemoryFormat suggest_memory_format() const;

  // ---- data access (CPU pointers for CPU tensors, device pointers for CUDA)
  void* raw_data() const;
  template <class T>
  T* data() const;

  // ---- views (no copies; recorded by autograd)
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a size; new leading dims allowed
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor view(const Shape& shape) const;     // must be expressible without a copy
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  Tensor contiguous(MemoryFormat f = MemoryFormat::Contiguous) const;
  Tensor clone(MemoryFormat f = MemoryFormat::Contiguous) const;  // always copies
  Tensor to(Device d) const;
  // non_blocking: a copy from pinned host memory (empty_pinned) to a CUDA
  // device returns once enqueued on the device's compute stream (later ops
  // there see the data; the pinned buffer is not reused before the copy is
  // done). Otherwise the same as to(d).
  Tensor to(Device d, bool non_blocking) const;
  Tensor to(DType t) const;
  bool is_pinned() const;  // a CPU tensor in page-locked memory
  Tensor detach() const;  // shares storage, no history

  // ---- autograd
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool r);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  // Gradients accumulate into .grad() over several backward calls.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;
  void zero_grad();  // zeroes .grad() in place when it exists

  // ---- in-place, outside autograd (refused on a leaf that requires grad
  // while grad mode is on, as PyTorch does)
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // any strides, same shape, any devices
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double v);

  // ---- host helpers
  double item() const;  // one element
  template <class T>
  std::vector<T> to_vector() const;  // row-major order, copied to the host
  std::string str(int64_t max_elems = 16) const;

 private:
  void check_inplace(const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

// ---- creation
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device dev = Device::cpu(),
             MemoryFormat f = MemoryFormat::Contiguous);
Tensor empty_strided(const Shape& shape, const Shape& strides, DType dtype, Device dev);
// A CPU tensor in page-locked host memory, for asynchronous copies to a CUDA
// device (needs a CUDA device; pageable memory, with a warning, when the
// system refuses to pin).
Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32, MemoryFormat f = MemoryFormat::Contiguous);
// Same shape and dtype; same strides when `like` is dense, else contiguous.
Tensor empty_like(const Tensor& like);
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device dev = Device::cpu(),
             MemoryFormat f = MemoryFormat::Contiguous);
Tensor zeros_like(const Tensor& like);
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device dev = Device::cpu());
Tensor full(const Shape& shape, double v, DType dtype = DType::F32, Device dev = Device::cpu());
Tensor scalar_tensor(double v, DType dtype = DType::F32, Device dev = Device::cpu());
Tensor arange(int64_t n, DType dtype = DType::I64, Device dev = Device::cpu());
template <class T>
Tensor from_vector(const std::vector<T>& v, const Shape& shape, Device dev = Device::cpu());

Shape contiguous_strides(const Shape& shape, MemoryFormat f = MemoryFormat::Contiguous);
// Broadcast two shapes by NumPy rules; throws naming both shapes when they clash.
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Maps a C++ type to its DType.
template <class T>
DType dtype_of();

}  // namespace ofa
