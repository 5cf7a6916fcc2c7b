// Depthwise k x k convolution on NHWC activations, forward and both
// gradients. One source for nvcc and for the CPU emulation (cuda_compat.h).
//
// Layout of the work: the channel is the contiguous dimension, so threadIdx.x
// walks channels (coalesced loads) and threadIdx.y walks pixels; each block
// owns a tile of channels (grid-stride over tiles in x) and a grid-stride
// share of the pixels (in y). The block's k x k taps of its channels are
// staged once in shared memory, tap-major, so every pixel reads them without
// touching the strided weight view again.
#include <algorithm>

#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include "kernels/common/conv_math.h"

namespace ofa::kernels::OFA_CUDA_NS {

namespace detail {

constexpr int kTileC = 32;  // channels per block = blockDim.x (one warp wide)
constexpr int kRows = 8;    // pixel rows per block = blockDim.y
constexpr int kThreads = kTileC * kRows;
// Weight gradient: a warp covers 8 channels x 4 pixel lanes, a block 8 warps.
constexpr int kWgC = 8;
constexpr int kWgLanesP = 4;
constexpr int kWgPixLanes = kWgLanesP * kRows;  // 32 pixel lanes per block

// Stages the taps of channels [c0, c0 + kTileC) as wt[tap * kTileC + cc];
// channels past C read as 0 so that every lane may load unconditionally.
template <class T, int K>
__device__ __forceinline__ void stage_taps(T* wt, const T* __restrict__ w, int64_t ws_c, int64_t ws_i, int64_t ws_j,
                                           int64_t c0, int64_t C) {
  const int tid = threadIdx.y * kTileC + threadIdx.x;
  for (int t = tid; t < K * K * kTileC; t += kThreads) {
    const int tap = t / kTileC, cc = t % kTileC;
    const int64_t c = c0 + cc;
    wt[t] = c < C ? w[c * ws_c + (tap / K) * ws_i + (tap % K) * ws_j] : T(0);
  }
}

template <class T, int K>
__global__ void __launch_bounds__(kThreads)
    dw_forward_kernel(DwGeom g, const T* __restrict__ x, const T* __restrict__ w, int64_t ws_c, int64_t ws_i,
                      int64_t ws_j, T* __restrict__ y) {
  OFA_DYNAMIC_SHARED(T, wt);  // [K * K][kTileC]
  const int64_t C = g.C, npix = g.N * g.Ho * g.Wo;
  for (int64_t c0 = int64_t(blockIdx.x) * kTileC; c0 < C; c0 += int64_t(gridDim.x) * kTileC) {
    stage_taps<T, K>(wt, w, ws_c, ws_i, ws_j, c0, C);
    __syncthreads();
    const int64_t c = c0 + threadIdx.x;
    if (c < C) {
      for (int64_t p = int64_t(blockIdx.y) * kRows + threadIdx.y; p < npix; p += int64_t(gridDim.y) * kRows) {
        const int64_t ow = p % g.Wo, r = p / g.Wo, oh = r % g.Ho, n = r / g.Ho;
        int64_t i0, i1, j0, j1;
        conv_valid_taps(oh, g.H, K, g.stride, g.pad, &i0, &i1);
        conv_valid_taps(ow, g.W, K, g.stride, g.pad, &j0, &j1);
        // Same summation order as the CPU kernel (i, then j, from zero).
        T acc = T(0);
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t ih = conv_in_index(oh, i, g.stride, g.pad);
          const T* xrow = x + ((n * g.H + ih) * g.W) * C + c;
          for (int64_t j = j0; j < j1; ++j)
            acc += xrow[conv_in_index(ow, j, g.stride, g.pad) * C] * wt[(i * K + j) * kTileC + threadIdx.x];
        }
        y[p * C + c] = acc;
      }
    }
    __syncthreads();  // the next tile overwrites wt
  }
}

template <class T, int K>
__global__ void __launch_bounds__(kThreads)
    dw_backward_input_kernel(DwGeom g, const T* __restrict__ dy, const T* __restrict__ w, int64_t ws_c, int64_t ws_i,
                             int64_t ws_j, T* __restrict__ dx) {
  OFA_DYNAMIC_SHARED(T, wt);  // [K * K][kTileC]
  const int64_t C = g.C, npix = g.N * g.H * g.W, s = g.stride;
  for (int64_t c0 = int64_t(blockIdx.x) * kTileC; c0 < C; c0 += int64_t(gridDim.x) * kTileC) {
    stage_taps<T, K>(wt, w, ws_c, ws_i, ws_j, c0, C);
    __syncthreads();
    const int64_t c = c0 + threadIdx.x;
    if (c < C) {
      for (int64_t p = int64_t(blockIdx.y) * kRows + threadIdx.y; p < npix; p += int64_t(gridDim.y) * kRows) {
        const int64_t iw = p % g.W, r = p / g.W, ih = r % g.H, n = r / g.H;
        int64_t oh0, i0, ow0, j0;
        conv_first_tap(ih, g.Ho, s, g.pad, &oh0, &i0);
        conv_first_tap(iw, g.Wo, s, g.pad, &ow0, &j0);
        // Gather: the outputs that read this input, in the CPU kernel's order.
        T acc = T(0);
        for (int64_t oh = oh0, i = i0; oh >= 0 && i < K; --oh, i += s) {
          const T* grow = dy + ((n * g.Ho + oh) * g.Wo) * C + c;
          for (int64_t ow = ow0, j = j0; ow >= 0 && j < K; --ow, j += s)
            acc += grow[ow * C] * wt[(i * K + j) * kTileC + threadIdx.x];
        }
        dx[p * C + c] = acc;
      }
    }
    __syncthreads();
  }
}

// Stage 1 of the weight gradient: block (channel tile of kWgC, partition q)
// sums dy * x over the partition's pixels for its channels' K*K taps.
// Lane l of warp wy: channel c0 + l % 8, pixel lane wy * 4 + l / 8. The 4
// pixel lanes of a warp combine by xor shuffles (identical sums in every
// lane, commutativity only), the 8 warps through shared memory in warp order.
template <class T, int K>
__global__ void __launch_bounds__(kThreads)
    dw_weight_partial_kernel(DwGeom g, const T* __restrict__ x, const T* __restrict__ dy, int64_t nparts,
                             int64_t part_len, double* __restrict__ part) {
  __shared__ double red[kRows][K * K][kWgC];
  const int64_t C = g.C, npix = g.N * g.Ho * g.Wo;
  const int lane = threadIdx.x, wy = threadIdx.y;
  const int cq = lane % kWgC, pl = wy * kWgLanesP + lane / kWgC;
  const int tid = wy * kTileC + lane;
  for (int64_t c0 = int64_t(blockIdx.x) * kWgC; c0 < C; c0 += int64_t(gridDim.x) * kWgC) {
    for (int64_t q = blockIdx.y; q < nparts; q += gridDim.y) {
      const int64_t c = c0 + cq;
      double acc[K * K];
      OFA_UNROLL
      for (int t = 0; t < K * K; ++t) acc[t] = 0.0;
      if (c < C) {
        const int64_t p_end = (q + 1) * part_len < npix ? (q + 1) * part_len : npix;
        for (int64_t p = q * part_len + pl; p < p_end; p += kWgPixLanes) {
          const int64_t ow = p % g.Wo, r = p / g.Wo, oh = r % g.Ho, n = r / g.Ho;
          const double go = static_cast<double>(dy[p * C + c]);
          const int64_t ih0 = oh * g.stride - g.pad, iw0 = ow * g.stride - g.pad;
          OFA_UNROLL
          for (int i = 0; i < K; ++i) {
            const int64_t ih = ih0 + i;
            if (ih < 0 || ih >= g.H) continue;
            const T* xrow = x + ((n * g.H + ih) * g.W) * C + c;
            OFA_UNROLL
            for (int j = 0; j < K; ++j) {
              const int64_t iw = iw0 + j;
              if (iw >= 0 && iw < g.W) acc[i * K + j] += go * static_cast<double>(xrow[iw * C]);
            }
          }
        }
      }
      // Every lane takes part in the shuffles, also those past C (zeros).
      OFA_UNROLL
      for (int t = 0; t < K * K; ++t) {
        double v = acc[t];
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        v += __shfl_xor_sync(0xffffffffu, v, 16);
        if (lane < kWgC) red[wy][t][cq] = v;
      }
      __syncthreads();
      for (int e = tid; e < K * K * kWgC; e += kThreads) {
        const int t = e / kWgC, cc = e % kWgC;
        double s = 0.0;
        for (int r = 0; r < kRows; ++r) s += red[r][t][cc];
        if (c0 + cc < C) part[(q * C + c0 + cc) * (K * K) + t] = s;
      }
      __syncthreads();  // red is reused by the next partition or tile
    }
  }
}

// Stage 2: dw[e] = sum over partitions in order (e = c * K*K + tap).
template <class T>
__global__ void __launch_bounds__(kThreads)
    dw_weight_finish_kernel(int64_t nparts, int64_t ckk, const double* __restrict__ part, T* __restrict__ dw) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < ckk; e += int64_t(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (int64_t q = 0; q < nparts; ++q) s += part[q * ckk + e];
    dw[e] = static_cast<T>(s);
  }
}

// Grid for (channel tiles, pixel rows) under a block budget: at least one
// block each way; the kernels' grid-stride loops cover the rest.
inline dim3 tile_grid(int64_t ctiles, int64_t prow_blocks, int64_t max_blocks) {
  const int64_t gx = std::max<int64_t>(1, std::min<int64_t>({ctiles, max_blocks, 65535}));
  const int64_t gy = std::max<int64_t>(1, std::min<int64_t>({prow_blocks, max_blocks / gx, 65535}));
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1);
}

inline void check_geom(const DwGeom& g, const char* op) {
  OFA_CHECK(g.k == 3 || g.k == 5 || g.k == 7, op, ": CUDA depthwise kernels exist for k = 3, 5, 7, got k = ", g.k);
  OFA_CHECK(g.stride >= 1 && g.pad >= 0 && g.N >= 0 && g.H >= 0 && g.W >= 0 && g.C >= 0, op, ": bad geometry (stride ",
            g.stride, ", pad ", g.pad, ", N ", g.N, ", H ", g.H, ", W ", g.W, ", C ", g.C, ")");
}

// Partitions of the weight gradient, from the sizes alone (so the summation
// order, hence the result, never depends on the device): about 512 pixels
// each, at most 1024, and at most 64 MiB of partial sums.
inline void weight_partitions(const DwGeom& g, int64_t* nparts, int64_t* part_len) {
  const int64_t npix = g.N * g.Ho * g.Wo, ckk = std::max<int64_t>(1, g.C * g.k * g.k);
  const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(1024, (int64_t(64) << 20) / (ckk * 8)));
  const int64_t np = std::max<int64_t>(1, std::min<int64_t>(ceil_div(npix, 512), cap));
  *nparts = np;
  *part_len = std::max<int64_t>(1, ceil_div(npix, np));
}

template <class T, int K>
void forward_k(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y,
               cudaStream_t stream, int64_t max_blocks) {
  const dim3 grid = tile_grid(ceil_div(g.C, kTileC), ceil_div(g.N * g.Ho * g.Wo, kRows), max_blocks);
  const size_t shmem = sizeof(T) * K * K * kTileC;
  OFA_LAUNCH((dw_forward_kernel<T, K>), grid, dim3(kTileC, kRows), shmem, stream)(g, x, w, ws_c, ws_i, ws_j, y);
  OFA_CHECK_LAUNCH("dw_forward_kernel");
}

template <class T, int K>
void backward_input_k(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* dx,
                      cudaStream_t stream, int64_t max_blocks) {
  const dim3 grid = tile_grid(ceil_div(g.C, kTileC), ceil_div(g.N * g.H * g.W, kRows), max_blocks);
  const size_t shmem = sizeof(T) * K * K * kTileC;
  OFA_LAUNCH((dw_backward_input_kernel<T, K>), grid, dim3(kTileC, kRows), shmem, stream)
  (g, dy, w, ws_c, ws_i, ws_j, dx);
  OFA_CHECK_LAUNCH("dw_backward_input_kernel");
}

template <class T, int K>
void backward_weight_k(const DwGeom& g, const T* x, const T* dy, T* dw, double* part, cudaStream_t stream,
                       int64_t max_blocks) {
  int64_t nparts, part_len;
  weight_partitions(g, &nparts, &part_len);
  const dim3 grid = tile_grid(ceil_div(g.C, kWgC), nparts, max_blocks);
  OFA_LAUNCH((dw_weight_partial_kernel<T, K>), grid, dim3(kTileC, kRows), 0, stream)(g, x, dy, nparts, part_len, part);
  OFA_CHECK_LAUNCH("dw_weight_partial_kernel");
  const int64_t ckk = g.C * K * K;
  const dim3 grid2(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(ceil_div(ckk, kThreads), max_blocks))));
  OFA_LAUNCH((dw_weight_finish_kernel<T>), grid2, dim3(kThreads), 0, stream)(nparts, ckk, part, dw);
  OFA_CHECK_LAUNCH("dw_weight_finish_kernel");
}

// The typed entry points with a block budget (max_blocks(): tests shrink it
// to make every grid-stride loop go round more than once).
template <class T>
void forward(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y,
             cudaStream_t stream, int64_t max_blocks) {
  check_geom(g, "depthwise_forward");
  if (g.N * g.Ho * g.Wo * g.C == 0) return;
  switch (g.k) {
    case 3:
      return forward_k<T, 3>(g, x, w, ws_c, ws_i, ws_j, y, stream, max_blocks);
    case 5:
      return forward_k<T, 5>(g, x, w, ws_c, ws_i, ws_j, y, stream, max_blocks);
    default:
      return forward_k<T, 7>(g, x, w, ws_c, ws_i, ws_j, y, stream, max_blocks);
  }
}

template <class T>
void backward_input(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* dx,
                    cudaStream_t stream, int64_t max_blocks) {
  check_geom(g, "depthwise_backward_input");
  if (g.N * g.H * g.W * g.C == 0) return;
  switch (g.k) {
    case 3:
      return backward_input_k<T, 3>(g, dy, w, ws_c, ws_i, ws_j, dx, stream, max_blocks);
    case 5:
      return backward_input_k<T, 5>(g, dy, w, ws_c, ws_i, ws_j, dx, stream, max_blocks);
    default:
      return backward_input_k<T, 7>(g, dy, w, ws_c, ws_i, ws_j, dx, stream, max_blocks);
  }
}

template <class T>
void backward_weight(const DwGeom& g, const T* x, const T* dy, T* dw, void* workspace, cudaStream_t stream,
                     int64_t max_blocks) {
  check_geom(g, "depthwise_backward_weight");
  if (g.C == 0) return;
  OFA_CHECK(workspace != nullptr, "depthwise_backward_weight: no workspace (need ",
            depthwise_backward_weight_workspace_bytes(g), " bytes)");
  double* part = static_cast<double*>(workspace);
  switch (g.k) {
    case 3:
      return backward_weight_k<T, 3>(g, x, dy, dw, part, stream, max_blocks);
    case 5:
      return backward_weight_k<T, 5>(g, x, dy, dw, part, stream, max_blocks);
    default:
      return backward_weight_k<T, 7>(g, x, dy, dw, part, stream, max_blocks);
  }
}

}  // namespace detail

size_t depthwise_backward_weight_workspace_bytes(const DwGeom& g) {
  int64_t nparts, part_len;
  detail::weight_partitions(g, &nparts, &part_len);
  return static_cast<size_t>(nparts * g.C * g.k * g.k) * sizeof(double);
}

void Backend::depthwise_forward(DType t, const DwGeom& g, const void* x, const void* w, int64_t ws_c, int64_t ws_i,
                                int64_t ws_j, void* y, Stream s) {
  OFA_CUDA_FLOATING(t, "depthwise_forward (CUDA)", [&] {
    detail::forward(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w), ws_c, ws_i, ws_j,
                    static_cast<scalar_t*>(y), s, max_blocks());
  });
}

void Backend::depthwise_backward_input(DType t, const DwGeom& g, const void* dy, const void* w, int64_t ws_c,
                                       int64_t ws_i, int64_t ws_j, void* dx, Stream s) {
  OFA_CUDA_FLOATING(t, "depthwise_backward_input (CUDA)", [&] {
    detail::backward_input(g, static_cast<const scalar_t*>(dy), static_cast<const scalar_t*>(w), ws_c, ws_i, ws_j,
                           static_cast<scalar_t*>(dx), s, max_blocks());
  });
}

void Backend::depthwise_backward_weight(DType t, const DwGeom& g, const void* x, const void* dy, void* dw,
                                        Scratch& scratch, Stream s) {
  OFA_CUDA_FLOATING(t, "depthwise_backward_weight (CUDA)", [&] {
    if (g.C == 0) return;
    void* ws = scratch.get(depthwise_backward_weight_workspace_bytes(g));
    detail::backward_weight(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(dy),
                            static_cast<scalar_t*>(dw), ws, s, max_blocks());
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
