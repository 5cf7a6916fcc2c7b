// Indexing and sorting: index_select and gather (forward and gradient),
// argsort, and the rank of a target among the classes (top-k accuracy).
// One source for nvcc and for the CPU emulation (cuda_compat.h).
//
// The gradients are written in gather form: every gx element is produced by
// one thread that sums, in increasing order, the gy entries whose index hits
// it, starting from zero. No atomics, so repeated indices accumulate
// deterministically and bit for bit as the CPU kernels (which add into a
// zero-filled gx in the same order). Indices out of range are recorded in
// the DeviceError (the first one to arrive wins) and the element is written
// as zero; the gradients ignore such indices (they hit no element).
#include <algorithm>

#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

namespace ofa::kernels::OFA_CUDA_NS {

namespace {

// Records an invalid index unless an earlier one is already there; the
// winner of the code's compare-and-swap fills the rest (read on the host
// after a synchronisation only).
__device__ __forceinline__ void record_error(DeviceError* e, int code, int64_t value, int64_t position,
                                             int64_t limit) {
  if (e == nullptr) return;
  if (atomicCAS(&e->code, static_cast<int>(kErrNone), code) == static_cast<int>(kErrNone)) {
    e->value = value;
    e->position = position;
    e->limit = limit;
  }
}

__device__ __forceinline__ int popcount32(unsigned v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  v = (v + (v >> 4)) & 0x0f0f0f0fu;
  return static_cast<int>((v * 0x01010101u) >> 24);
}

template <class T>
__device__ __forceinline__ bool is_nan_value(T v) {
  return v != v;  // false for integers
}

// Grid of (x tiles, y tiles) under the block budget, each way at least 1.
inline dim3 grid_2d(int64_t gx_want, int64_t gy_want) {
  const int64_t mb = max_blocks();
  const int64_t gx = std::max<int64_t>(1, std::min<int64_t>({gx_want, mb, 65535}));
  const int64_t gy = std::max<int64_t>(1, std::min<int64_t>({gy_want, mb / gx, 65535}));
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1);
}

inline unsigned grid_1d(int64_t blocks) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, max_blocks())));
}

// ---------------------------------------------------------------- index_select

template <class T>
__global__ void __launch_bounds__(kThreads)
    index_select_forward_kernel(const T* __restrict__ x, int64_t outer, int64_t D, int64_t inner,
                                const int64_t* __restrict__ index, int64_t K, T* __restrict__ out,
                                DeviceError* err) {
  const int64_t total = outer * K * inner;
  OFA_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, k = r % K, o = r / K;
    const int64_t idx = index[k];
    if (idx < 0 || idx >= D) {
      record_error(err, kErrIndexSelect, idx, k, D);
      out[e] = T(0);
    } else {
      out[e] = x[(o * D + idx) * inner + i];
    }
  }
}

// Block (destination d, group of kThreads consecutive (o, i) elements): the
// block scans the index in chunks of kThreads, compacts the hits of d in
// increasing k (warp ballots, then the warps' counts in order) into shared
// memory, and every thread adds its element's gy rows for those hits.
template <class T>
__global__ void __launch_bounds__(kThreads)
    index_select_backward_kernel(const T* __restrict__ gy, int64_t outer, int64_t D, int64_t inner,
                                 const int64_t* __restrict__ index, int64_t K, T* __restrict__ gx) {
  constexpr int kWarps = kThreads / 32;
  __shared__ int64_t hits[kThreads];
  __shared__ unsigned masks[kWarps];
  const int64_t E = outer * inner;
  const int tid = threadIdx.x, lane = tid % 32, wid = tid / 32;
  for (int64_t d = blockIdx.x; d < D; d += gridDim.x) {
    for (int64_t e0 = int64_t(blockIdx.y) * kThreads; e0 < E; e0 += int64_t(gridDim.y) * kThreads) {
      const int64_t e = e0 + tid;
      const bool live = e < E;
      const int64_t o = live ? e / inner : 0, i = live ? e % inner : 0;
      T acc = T(0);
      for (int64_t k0 = 0; k0 < K; k0 += kThreads) {
        const int64_t k = k0 + tid;
        const bool hit = k < K && index[k] == d;
        const unsigned m = __ballot_sync(0xffffffffu, hit);
        if (lane == 0) masks[wid] = m;
        __syncthreads();
        int before = 0, nhits = 0;
        for (int w = 0; w < kWarps; ++w) {
          const int c = popcount32(masks[w]);
          if (w < wid) before += c;
          nhits += c;
        }
        if (hit) hits[before + popcount32(m & ((1u << lane) - 1u))] = k;
        __syncthreads();
        if (live)
          for (int h = 0; h < nhits; ++h) acc += gy[(o * K + hits[h]) * inner + i];
        __syncthreads();  // hits and masks are rewritten by the next chunk
      }
      if (live) gx[(o * D + d) * inner + i] = acc;
    }
  }
}

// ---------------------------------------------------------------- gather

struct GatherGeom {
  int nd, dim;
  int64_t shape[kMaxDims];    // index / out / gy shape
  int64_t rm[kMaxDims];       // its row-major strides
  int64_t xs[kMaxDims];       // x (forward) or gx (backward) strides
  int64_t xshape[kMaxDims];   // x / gx shape (backward)
  int64_t xdim;               // x's size along dim
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    gather_forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ index, GatherGeom g, int64_t total,
                          T* __restrict__ out, DeviceError* err) {
  OFA_GRID_STRIDE(e, total) {
    int64_t rest = e, xo = 0;
    for (int d = g.nd - 1; d >= 0; --d) {
      const int64_t c = rest % g.shape[d];
      rest /= g.shape[d];
      if (d != g.dim) xo += c * g.xs[d];
    }
    const int64_t idx = index[e];
    if (idx < 0 || idx >= g.xdim) {
      record_error(err, kErrGather, idx, e, g.xdim);
      out[e] = T(0);
    } else {
      out[e] = x[xo + idx * g.xs[g.dim]];
    }
  }
}

// One thread per gx element (row-major over the input's shape): the line of
// the index through it (all coordinates but dim), the j whose index is its
// coordinate along dim, in increasing j. Elements beyond the index's extent
// in the other dims get zero.
template <class T>
__global__ void __launch_bounds__(kThreads)
    gather_backward_kernel(const T* __restrict__ gy, const int64_t* __restrict__ index, GatherGeom g, int64_t total,
                           T* __restrict__ gx) {
  OFA_GRID_STRIDE(e, total) {
    int64_t rest = e, go = 0, lo = 0, t = 0;
    bool inside = true;
    for (int d = g.nd - 1; d >= 0; --d) {
      const int64_t c = rest % g.xshape[d];
      rest /= g.xshape[d];
      go += c * g.xs[d];
      if (d == g.dim) {
        t = c;
      } else {
        inside = inside && c < g.shape[d];
        lo += c * g.rm[d];
      }
    }
    T acc = T(0);
    if (inside) {
      const int64_t J = g.shape[g.dim], js = g.rm[g.dim];
      for (int64_t j = 0; j < J; ++j)
        if (index[lo + j * js] == t) acc += gy[lo + j * js];
    }
    gx[go] = acc;
  }
}

// ---------------------------------------------------------------- argsort

// "u goes before v" in the sort order (NaN the largest value).
template <class T, bool Desc>
__device__ __forceinline__ bool sort_less(T u, T v) {
  if (Desc) return u > v || (is_nan_value(u) && !is_nan_value(v));
  return u < v || (!is_nan_value(u) && is_nan_value(v));
}

// One block per line (grid-stride over lines). A stable sort by rank
// counting: element a goes to position #{b : b before a} where b is before a
// when it is less, or equivalent and earlier. The line is staged through
// shared memory a tile at a time; each thread ranks a (a block-stride loop
// when K > kThreads). A permutation, so every output is written once.
template <class T, bool Desc>
__global__ void __launch_bounds__(kThreads)
    argsort_kernel(const T* __restrict__ x, int64_t outer, int64_t K, int64_t inner, int64_t* __restrict__ out) {
  __shared__ T vals[kThreads];
  const int64_t lines = outer * inner;
  for (int64_t line = blockIdx.x; line < lines; line += gridDim.x) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    for (int64_t a0 = 0; a0 < K; a0 += kThreads) {
      const int64_t a = a0 + threadIdx.x;
      const bool live = a < K;
      const T va = live ? x[base + a * inner] : T(0);
      int64_t rank = 0;
      for (int64_t b0 = 0; b0 < K; b0 += kThreads) {
        __syncthreads();  // the previous tile has been read by every thread
        if (b0 + threadIdx.x < K) vals[threadIdx.x] = x[base + (b0 + threadIdx.x) * inner];
        __syncthreads();
        const int64_t nb = K - b0 < kThreads ? K - b0 : kThreads;
        if (live)
          for (int64_t j = 0; j < nb; ++j) {
            const T vb = vals[j];
            rank += (sort_less<T, Desc>(vb, va) || (!sort_less<T, Desc>(va, vb) && b0 + j < a)) ? 1 : 0;
          }
      }
      if (live) out[base + rank * inner] = a;
    }
  }
}

// ---------------------------------------------------------------- top-k rank

// One warp per row: lanes count the classes ranked above the target over a
// lane-strided share of the row, then an integer xor-shuffle sum (exact).
// Invalid targets are recorded and get rank K (never among the top k <= K).
template <class T>
__global__ void __launch_bounds__(kThreads)
    topk_rank_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, int64_t N, int64_t K,
                     int64_t* __restrict__ rank, DeviceError* err) {
  const int lane = threadIdx.x % 32;
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int64_t nwarps = int64_t(gridDim.x) * blockDim.x / 32;
  for (int64_t n = warp; n < N; n += nwarps) {
    const int64_t t = target[n];
    const bool ok = t >= 0 && t < K;
    int64_t r = 0;
    if (ok) {
      const T* xr = x + n * K;
      const T v = xr[t];
      for (int64_t k = lane; k < K; k += 32) r += (xr[k] > v || (xr[k] == v && k < t)) ? 1 : 0;
    }
    for (int off = 16; off > 0; off /= 2) r += __shfl_xor_sync(0xffffffffu, r, off);
    if (lane == 0) {
      if (!ok) record_error(err, kErrTopkTarget, t, n, K);
      rank[n] = ok ? r : K;
    }
  }
}

inline void check_sizes(const char* op, int64_t a, int64_t b, int64_t c, int64_t d) {
  OFA_CHECK(a >= 0 && b >= 0 && c >= 0 && d >= 0, op, ": negative size (", a, ", ", b, ", ", c, ", ", d, ")");
}

GatherGeom gather_geom(const CudaBackend::GatherArgs& a, const char* op, bool backward) {
  OFA_CHECK(a.nd >= 1 && a.nd <= kMaxDims, op, ": ", a.nd, " dims (1 to ", kMaxDims, " supported)");
  OFA_CHECK(a.dim >= 0 && a.dim < a.nd, op, ": dim ", a.dim, " outside [0, ", a.nd, ")");
  GatherGeom g{};
  g.nd = a.nd;
  g.dim = a.dim;
  g.xdim = a.x_dim_size;
  int64_t s = 1;
  for (int d = a.nd - 1; d >= 0; --d) {
    OFA_CHECK(a.shape[d] >= 0, op, ": negative size ", a.shape[d], " in dim ", d);
    g.shape[d] = a.shape[d];
    g.rm[d] = s;
    s *= std::max<int64_t>(a.shape[d], 1);
    g.xs[d] = a.x_strides[d];
    g.xshape[d] = a.x_shape[d];
    if (backward) {
      OFA_CHECK(d == a.dim ? a.x_shape[d] == a.x_dim_size : a.x_shape[d] >= a.shape[d], op, ": index of size ",
                a.shape[d], " in dim ", d, " against the input's ", a.x_shape[d]);
    }
  }
  return g;
}

}  // namespace

void Backend::index_select_forward(DType t, const void* x, int64_t outer, int64_t D, int64_t inner,
                                   const int64_t* index, int64_t K, void* out, DeviceError* err, Stream s) {
  check_sizes("index_select_forward (CUDA)", outer, D, inner, K);
  const int64_t total = outer * K * inner;
  if (total == 0) return;
  OFA_DISPATCH_ALL(t, "index_select_forward (CUDA)", [&] {
    OFA_LAUNCH((index_select_forward_kernel<scalar_t>), grid_for(total), kThreads, 0, s)
    (static_cast<const scalar_t*>(x), outer, D, inner, index, K, static_cast<scalar_t*>(out), err);
    OFA_CHECK_LAUNCH("index_select_forward_kernel");
  });
}

void Backend::index_select_backward(DType t, const void* gy, int64_t outer, int64_t D, int64_t inner,
                                    const int64_t* index, int64_t K, void* gx, Stream s) {
  check_sizes("index_select_backward (CUDA)", outer, D, inner, K);
  if (outer * D * inner == 0) return;
  OFA_CUDA_FLOATING(t, "index_select_backward (CUDA)", [&] {
    const dim3 grid = grid_2d(D, ceil_div(outer * inner, kThreads));
    OFA_LAUNCH((index_select_backward_kernel<scalar_t>), grid, kThreads, 0, s)
    (static_cast<const scalar_t*>(gy), outer, D, inner, index, K, static_cast<scalar_t*>(gx));
    OFA_CHECK_LAUNCH("index_select_backward_kernel");
  });
}

void Backend::gather_forward(DType t, const void* x, const int64_t* index, const GatherArgs& a, void* out,
                             DeviceError* err, Stream s) {
  const GatherGeom g = gather_geom(a, "gather_forward (CUDA)", false);
  int64_t total = 1;
  for (int d = 0; d < g.nd; ++d) total *= g.shape[d];
  if (total == 0) return;
  OFA_DISPATCH_ALL(t, "gather_forward (CUDA)", [&] {
    OFA_LAUNCH((gather_forward_kernel<scalar_t>), grid_for(total), kThreads, 0, s)
    (static_cast<const scalar_t*>(x), index, g, total, static_cast<scalar_t*>(out), err);
    OFA_CHECK_LAUNCH("gather_forward_kernel");
  });
}

void Backend::gather_backward(DType t, const void* gy, const int64_t* index, const GatherArgs& a, void* gx,
                              Stream s) {
  const GatherGeom g = gather_geom(a, "gather_backward (CUDA)", true);
  int64_t total = 1;
  for (int d = 0; d < g.nd; ++d) total *= g.xshape[d];
  if (total == 0) return;
  OFA_CUDA_FLOATING(t, "gather_backward (CUDA)", [&] {
    OFA_LAUNCH((gather_backward_kernel<scalar_t>), grid_for(total), kThreads, 0, s)
    (static_cast<const scalar_t*>(gy), index, g, total, static_cast<scalar_t*>(gx));
    OFA_CHECK_LAUNCH("gather_backward_kernel");
  });
}

void Backend::argsort(DType t, const void* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out,
                      Stream s) {
  check_sizes("argsort (CUDA)", outer, K, inner, 0);
  const int64_t lines = outer * inner;
  if (lines * K == 0) return;
  OFA_DISPATCH_ALL(t, "argsort (CUDA)", [&] {
    const scalar_t* xs = static_cast<const scalar_t*>(x);
    if (descending) {
      OFA_LAUNCH((argsort_kernel<scalar_t, true>), grid_1d(lines), kThreads, 0, s)(xs, outer, K, inner, out);
    } else {
      OFA_LAUNCH((argsort_kernel<scalar_t, false>), grid_1d(lines), kThreads, 0, s)(xs, outer, K, inner, out);
    }
    OFA_CHECK_LAUNCH("argsort_kernel");
  });
}

void Backend::topk_rank(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, int64_t* rank,
                        DeviceError* err, Stream s) {
  check_sizes("topk_rank (CUDA)", N, K, 0, 0);
  if (N == 0) return;
  OFA_CUDA_FLOATING(t, "topk_rank (CUDA)", [&] {
    OFA_LAUNCH((topk_rank_kernel<scalar_t>), grid_1d(ceil_div(N, kThreads / 32)), kThreads, 0, s)
    (static_cast<const scalar_t*>(x), target, N, K, rank, err);
    OFA_CHECK_LAUNCH("topk_rank_kernel");
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
