// The engine's side of the CUDA backend: which backend runs (the GPU's, or
// the kernels on the CPU emulation), one compute stream per device, the
// caching device allocator, pinned host memory, stream-ordered scratch and
// the device error record. Plain C++: compiled in every build, so that CUDA
// tensors work on the emulated backend where there is no GPU (tests, CI).
//
// Backend selection, once per process: OFA_CUDA_EMULATION=1 (or
// set_cuda_emulation(true) before the first CUDA call) picks the emulated
// backend; otherwise the GPU backend when the build has one and a device is
// visible; otherwise there is no CUDA device (cuda_device_count() == 0).
//
// Ordering: every op of a device runs on that device's compute stream, so
// memory freed by one op and reused by the next is safe in stream order;
// memory used on another stream is marked with record_stream() and reused
// only after that stream's work is done.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/common.h"
#include "engine/storage.h"
#include "kernels/cuda/backend.h"

namespace ofa {

// Before the first CUDA call only (afterwards: an error naming the backend in use).
void set_cuda_emulation(bool on);
// The backend in use; nullptr when there is no CUDA device.
kernels::CudaBackend* cuda_backend_or_null();
// The backend in use; throws (naming what is missing) when there is none.
kernels::CudaBackend& cuda_backend();
bool cuda_emulated();  // true when the CUDA device is the CPU emulation

// The compute stream of a device (created on first use; also makes the
// device current for the calling thread).
kernels::Stream cuda_stream(int device);
// Waits for the device's compute stream, then reports the first invalid
// index any kernel recorded since the last check (see kernels::DeviceError).
void cuda_synchronize(int device);

// The strided operands of an elementwise kernel; at most kernels::kMaxDims
// dims after coalescing (the engine's tensors have at most 5).
template <int N>
kernels::StridedArgs<N> cuda_args(const char* op, const Shape& shape, std::array<Shape, N> strides) {
  kernels::StridedArgs<N> a;
  OFA_CHECK(kernels::make_strided_args(kernels::StridedLayout<N>{shape, strides}, &a), op, ": shape ",
            shape_str(shape), " has more than ", kernels::kMaxDims, " dims the CUDA kernels cannot merge");
  return a;
}

// ---------------------------------------------------------------- device memory

struct CudaMemoryStats {
  size_t allocated = 0;       // bytes handed out and not yet freed (size-class rounded)
  size_t reserved = 0;        // bytes obtained from the device (in use + cached)
  size_t peak_allocated = 0;  // high-water mark of `allocated`
  int64_t device_mallocs = 0; // calls into the device allocator (cudaMalloc)
  int64_t device_frees = 0;
  int64_t cache_hits = 0;     // allocations served from the cache
};
CudaMemoryStats cuda_memory_stats(int device);
void cuda_reset_peak(int device);
// Frees every cached block back to the device (after synchronising).
void cuda_empty_cache(int device);
// p (from the device's allocator) is used by work on stream s: its memory is
// reused only once s has passed the point of the last such use.
void cuda_record_stream(int device, void* p, kernels::Stream s);

Allocator* cuda_caching_allocator(int device);
// Page-locked host memory for asynchronous copies (CPU tensors made with
// Tensor::empty_pinned); a freed buffer is reused only after the copies
// enqueued from it have finished. Falls back to pageable memory (with a
// warning once) when the system refuses to pin.
Allocator* cuda_pinned_allocator();
// True when p lies in a block from the pinned allocator.
bool cuda_is_pinned(const void* p);
// The pinned block holding p is read by work on s (the copy that reads it).
void cuda_pinned_record(const void* p, kernels::Stream s);

// ---------------------------------------------------------------- scratch

// Scratch device memory for the kernels of one op, from the caching
// allocator, released when the object dies (stream-ordered: safe for the
// work the op enqueued on the compute stream).
class CudaScratch final : public kernels::Scratch {
 public:
  explicit CudaScratch(int device) : device_(device) {}
  ~CudaScratch() override;
  CudaScratch(const CudaScratch&) = delete;
  CudaScratch& operator=(const CudaScratch&) = delete;
  void* get(size_t bytes) override;

 private:
  struct Block {
    void* p;
    size_t n;
  };
  int device_;
  Block blocks_[8];
  int count_ = 0;
};

// The device error record (kernels::DeviceError) of a device: kernels that
// meet an invalid index write it instead of trapping; the code names the op
// family. The first record stands until it is raised: with several invalid
// indices, which one is named can differ between runs on a GPU.
kernels::DeviceError* cuda_error_record(int device);
// Synchronises the device's compute stream and raises the recorded error, if
// any, as ofa::Error ("cross_entropy: target 12 of row 3 outside [0, 10)"),
// clearing the record.
void cuda_check_errors(int device);

}  // namespace ofa
