// One kernel source, two compilers: under nvcc this is the CUDA runtime; under
// the host compiler (the `emulated` tests) it maps the CUDA language onto the
// CPU emulation in kernels/cuda/emu/emu.h. Kernel files use only:
//   __global__ __device__ __host__ __forceinline__ __restrict__ __shared__
//   threadIdx blockIdx blockDim gridDim warpSize
//   __syncthreads __syncthreads_count/_and/_or __syncwarp __shfl_sync __shfl_up_sync __shfl_down_sync
//   __shfl_xor_sync __ballot_sync __any_sync __all_sync __activemask
//   atomicAdd atomicMax atomicMin atomicCAS atomicExch __threadfence
//   OFA_DYNAMIC_SHARED(type, name)   (instead of extern __shared__ T name[])
//   OFA_LAUNCH(kernel, grid, block, shmem, stream)(args...)
//   OFA_CHECK_LAUNCH(kernel_name)    (right after every launch)
//   OFA_UNROLL                       (instead of #pragma unroll)
// A template kernel goes into OFA_LAUNCH in parentheses: OFA_LAUNCH((k<T, 3>), ...).
// An emulated translation unit must not include <cuda_runtime.h> (dim3 and
// cudaStream_t would be defined twice).
#pragma once

#include "engine/common.h"

#ifdef __CUDACC__
#include <cuda_runtime.h>

#define OFA_LAUNCH(kernel, grid, block, shmem, stream) kernel<<<(grid), (block), (shmem), (stream)>>>
// Launch errors (bad configuration, too much shared memory) surface here;
// errors while the kernel runs surface at the next synchronising call.
#define OFA_CHECK_LAUNCH(name)                                                                             \
  do {                                                                                                     \
    cudaError_t ofa_e_ = cudaGetLastError();                                                               \
    if (ofa_e_ != cudaSuccess)                                                                             \
      throw ::ofa::Error(::ofa::str_cat(__FILE__, ":", __LINE__, ": launch of ", name, " failed: ",        \
                                        cudaGetErrorName(ofa_e_), " (", cudaGetErrorString(ofa_e_), ")")); \
  } while (0)
#define OFA_DYNAMIC_SHARED(type, name)                           \
  extern __shared__ __align__(16) unsigned char ofa_dyn_smem_[]; \
  type* name = reinterpret_cast<type*>(ofa_dyn_smem_)
#define OFA_EMULATED 0
#define OFA_UNROLL _Pragma("unroll")
#define OFA_CUDA_NS cuda

#else  // the host compiler: the CPU emulation

#include "kernels/cuda/emu/emu.h"

#define OFA_EMULATED 1
#define OFA_UNROLL
// Emulated kernels live in ofa::kernels::cuda_emu, so that a test holding
// them can also link a library that holds the nvcc-compiled ones.
#define OFA_CUDA_NS cuda_emu
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// One OS thread runs one block at a time, so a thread_local is per block.
#define __shared__ static thread_local

struct CUstream_st;
typedef CUstream_st* cudaStream_t;
using dim3 = ::ofa::emu::dim3;

#define threadIdx (::ofa::emu::thread_idx())
#define blockIdx (::ofa::emu::block_idx())
#define blockDim (::ofa::emu::block_dim())
#define gridDim (::ofa::emu::grid_dim())
constexpr int warpSize = ::ofa::emu::kWarpSize;

#define OFA_LAUNCH(kernel, grid, block, shmem, stream) \
  ::ofa::emu::make_launcher(#kernel, &kernel, dim3(grid), dim3(block), static_cast<size_t>(shmem))
#define OFA_CHECK_LAUNCH(name) \
  do {                         \
  } while (0)  // the emulator throws from the launch itself
#define OFA_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::ofa::emu::dynamic_shared())

inline void __syncthreads() { ::ofa::emu::syncthreads(); }
inline int __syncthreads_count(int pred) { return ::ofa::emu::syncthreads_count(pred); }
inline int __syncthreads_and(int pred) {
  return ::ofa::emu::syncthreads_count(pred) == int(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int pred) { return ::ofa::emu::syncthreads_count(pred) != 0; }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::ofa::emu::warp_exchange(::ofa::emu::WarpOp::SyncWarp, mask, 0, 0, 32);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline unsigned __activemask() { return ::ofa::emu::active_mask(); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  return ::ofa::emu::shfl_as(::ofa::emu::WarpOp::Shfl, mask, v, src_lane, width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::ofa::emu::shfl_as(::ofa::emu::WarpOp::ShflUp, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::ofa::emu::shfl_as(::ofa::emu::WarpOp::ShflDown, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::ofa::emu::shfl_as(::ofa::emu::WarpOp::ShflXor, mask, v, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return static_cast<unsigned>(::ofa::emu::warp_exchange(::ofa::emu::WarpOp::Ballot, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return static_cast<int>(::ofa::emu::warp_exchange(::ofa::emu::WarpOp::Any, mask, pred != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  return static_cast<int>(::ofa::emu::warp_exchange(::ofa::emu::WarpOp::All, mask, pred != 0, 0, 32));
}

// The CUDA overloads that exist: float, double, int, unsigned, unsigned long long.
inline float atomicAdd(float* p, float v) { return ::ofa::emu::atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return ::ofa::emu::atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return ::ofa::emu::atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return ::ofa::emu::atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return ::ofa::emu::atomic_add(p, v);
}
inline int atomicMax(int* p, int v) { return ::ofa::emu::atomic_max(p, v); }
inline unsigned atomicMax(unsigned* p, unsigned v) { return ::ofa::emu::atomic_max(p, v); }
inline long long atomicMax(long long* p, long long v) { return ::ofa::emu::atomic_max(p, v); }
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
  return ::ofa::emu::atomic_max(p, v);
}
inline int atomicMin(int* p, int v) { return ::ofa::emu::atomic_min(p, v); }
inline unsigned atomicMin(unsigned* p, unsigned v) { return ::ofa::emu::atomic_min(p, v); }
inline int atomicCAS(int* p, int c, int v) { return ::ofa::emu::atomic_cas(p, c, v); }
inline unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { return ::ofa::emu::atomic_cas(p, c, v); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long c, unsigned long long v) {
  return ::ofa::emu::atomic_cas(p, c, v);
}
inline int atomicExch(int* p, int v) { return ::ofa::emu::atomic_exch(p, v); }
inline float atomicExch(float* p, float v) { return ::ofa::emu::atomic_exch(p, v); }

#endif  // __CUDACC__
