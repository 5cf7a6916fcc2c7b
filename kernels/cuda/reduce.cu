// reduce_sum: out[keep index] = scale * sum over the reduced dims, in double.
// One source for nvcc and for the CPU emulation (cuda_compat.h).
//
// Work items: (output element, part of the reduced range). The reduced range
// [0, n_red) is cut into `nparts` parts of `part_len` points, a partition
// chosen from the sizes alone; each item is summed by a fixed set of threads
// in a fixed order, and with more than one part a second kernel adds the
// parts of each output in part order. So the result never depends on the
// grid size or on how blocks are scheduled.
//
// Two shapes of the first kernel:
//   - rows: one warp per item, lanes stride over the reduced points (the
//     reduced run is read coalesced when it is contiguous), xor-shuffle sum
//     (every lane ends with the same value: commutativity only);
//   - columns, when the innermost kept dim is contiguous in the input (an
//     NHWC tensor summed over N, H, W): a block owns 32 consecutive outputs
//     (threadIdx.x, coalesced loads) and 8 row lanes (threadIdx.y) that
//     stride over the part's reduced points; the 8 lanes are added in order.
#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include <algorithm>

namespace ofa::kernels::OFA_CUDA_NS {

namespace reduce_detail {

constexpr int kWarps = kThreads / 32;  // items per block of the row kernel
constexpr int kTile = 32;              // outputs per block of the column kernel
constexpr int kRows = 8;               // row lanes per block of the column kernel

__host__ __device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ double warp_sum(double v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    reduce_row_kernel(const T* __restrict__ in, StridedArgs<2> keep, StridedArgs<1> red, int64_t nparts,
                      int64_t part_len, double scale, T* __restrict__ out, double* __restrict__ part) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t n_out = keep.numel, n_red = red.numel, items = n_out * nparts;
  // The item loop is uniform across a warp: every lane reaches the shuffles.
  for (int64_t it = int64_t(blockIdx.x) * kWarps + warp; it < items; it += int64_t(gridDim.x) * kWarps) {
    const int64_t o = it / nparts, q = it % nparts;
    int64_t ko[2];
    keep.offsets(o, ko);
    const int64_t r0 = q * part_len, r1 = min64(n_red, r0 + part_len);
    double acc = 0.0;
    for (int64_t r = r0 + lane; r < r1; r += 32) {
      int64_t ro[1];
      red.offsets(r, ro);
      acc += static_cast<double>(in[ko[0] + ro[0]]);
    }
    acc = warp_sum(acc);
    if (lane == 0) {
      if (nparts == 1) out[ko[1]] = static_cast<T>(acc * scale);
      else part[q * n_out + o] = acc;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kTile * kRows)
    reduce_col_kernel(const T* __restrict__ in, StridedArgs<2> keep, StridedArgs<1> red, int64_t nparts,
                      int64_t part_len, double scale, T* __restrict__ out, double* __restrict__ part) {
  __shared__ double sh[kRows][kTile];
  const int64_t n_out = keep.numel, n_red = red.numel;
  const int64_t tiles = (n_out + kTile - 1) / kTile, items = tiles * nparts;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t q = it % nparts, o = (it / nparts) * kTile + threadIdx.x;
    double acc = 0.0;
    int64_t ko[2] = {0, 0};
    if (o < n_out) {
      keep.offsets(o, ko);
      const int64_t r1 = min64(n_red, (q + 1) * part_len);
      for (int64_t r = q * part_len + threadIdx.y; r < r1; r += kRows) {
        int64_t ro[1];
        red.offsets(r, ro);
        acc += static_cast<double>(in[ko[0] + ro[0]]);
      }
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && o < n_out) {
      double s = 0.0;
      for (int y = 0; y < kRows; ++y) s += sh[y][threadIdx.x];
      if (nparts == 1) out[ko[1]] = static_cast<T>(s * scale);
      else part[q * n_out + o] = s;
    }
    __syncthreads();  // sh is rewritten by the next item
  }
}

// out[o] = scale * sum over parts, in part order.
template <class T>
__global__ void __launch_bounds__(kThreads)
    reduce_finish_kernel(StridedArgs<2> keep, int64_t nparts, const double* __restrict__ part, double scale,
                         T* __restrict__ out) {
  const int64_t n_out = keep.numel;
  OFA_GRID_STRIDE(o, n_out) {
    double s = 0.0;
    for (int64_t q = 0; q < nparts; ++q) s += part[q * n_out + o];
    int64_t ko[2];
    keep.offsets(o, ko);
    out[ko[1]] = static_cast<T>(s * scale);
  }
}

// The partition of the reduced range, from the sizes alone: one part when
// there are enough items to fill the device or the reduction is short;
// otherwise parts of at least 4096 points, enough of them for ~4096 work
// units, at most 1024 and at most 64 MiB of partial sums.
inline void partition(int64_t n_out, int64_t n_red, int64_t units_per_part, int64_t* nparts, int64_t* part_len) {
  int64_t np = 1;
  if (n_red > 4096 && units_per_part < 4096) {
    const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(1024, (int64_t(8) << 20) / std::max<int64_t>(1, n_out)));
    np = std::max<int64_t>(1, std::min<int64_t>({ceil_div(n_red, 4096), ceil_div(4096, units_per_part), cap}));
  }
  const int64_t len = std::max<int64_t>(1, ceil_div(n_red, np));
  *part_len = len;
  *nparts = std::max<int64_t>(1, ceil_div(n_red, len));
}

inline bool use_columns(const StridedArgs<2>& keep) {
  return keep.nd >= 1 && keep.strides[0][keep.nd - 1] == 1 && keep.shape[keep.nd - 1] >= 8;
}

template <class T>
void reduce(const T* in, const StridedArgs<2>& keep, const StridedArgs<1>& red, T* out, double scale,
            Scratch& scratch, cudaStream_t stream) {
  const int64_t n_out = keep.numel, n_red = red.numel;
  if (n_out == 0) return;
  const bool cols = use_columns(keep);
  int64_t nparts, part_len;
  partition(n_out, n_red, cols ? ceil_div(n_out, kTile) : n_out, &nparts, &part_len);
  double* part = nparts > 1 ? static_cast<double*>(scratch.get(static_cast<size_t>(nparts * n_out) * sizeof(double)))
                            : nullptr;
  if (cols) {
    const int64_t items = ceil_div(n_out, kTile) * nparts;
    const unsigned grid = static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(items, max_blocks())));
    OFA_LAUNCH((reduce_col_kernel<T>), grid, dim3(kTile, kRows), 0, stream)
    (in, keep, red, nparts, part_len, scale, out, part);
    OFA_CHECK_LAUNCH("reduce_col_kernel");
  } else {
    OFA_LAUNCH((reduce_row_kernel<T>), grid_for(n_out * nparts, kWarps), kThreads, 0, stream)
    (in, keep, red, nparts, part_len, scale, out, part);
    OFA_CHECK_LAUNCH("reduce_row_kernel");
  }
  if (nparts > 1) {
    OFA_LAUNCH((reduce_finish_kernel<T>), grid_for(n_out), kThreads, 0, stream)(keep, nparts, part, scale, out);
    OFA_CHECK_LAUNCH("reduce_finish_kernel");
  }
}

}  // namespace reduce_detail

void Backend::reduce_sum(DType t, const void* in, const StridedArgs<2>& keep, const StridedArgs<1>& red, void* out,
                         double scale, Scratch& scratch, Stream s) {
  OFA_CHECK(keep.nd >= 0 && keep.nd <= kMaxDims && red.nd >= 0 && red.nd <= kMaxDims,
            "reduce_sum (CUDA): bad number of dims (kept ", keep.nd, ", reduced ", red.nd, ")");
  OFA_CHECK(keep.numel >= 0 && red.numel >= 0, "reduce_sum (CUDA): bad sizes (", keep.numel, " outputs, ", red.numel,
            " reduced points)");
  OFA_CUDA_FLOATING(t, "reduce_sum (CUDA)", [&] {
    reduce_detail::reduce(static_cast<const scalar_t*>(in), keep, red, static_cast<scalar_t*>(out), scale, scratch,
                          s);
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
