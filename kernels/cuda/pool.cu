// Global average pooling on channels-last [N, HW, C] data, forward and
// backward. One source for nvcc and for the CPU emulation (cuda_compat.h).
//
// Forward: a block owns 32 consecutive channels of one image (threadIdx.x,
// coalesced loads) and 8 pixel lanes (threadIdx.y) striding over the HW
// pixels; each lane sums in double and the 8 lanes are added in lane order,
// so each output is summed in a fixed order whatever the grid. The division
// by HW is the CPU kernel's (acc / HW in double, then rounded to T).
#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include <algorithm>

namespace ofa::kernels::OFA_CUDA_NS {

namespace pool_detail {

constexpr int kTile = 32;  // channels per block
constexpr int kRows = 8;   // pixel lanes per block

template <class T>
__global__ void __launch_bounds__(kTile * kRows)
    gap_forward_kernel(const T* __restrict__ x, int64_t N, int64_t HW, int64_t C, T* __restrict__ out) {
  __shared__ double sh[kRows][kTile];
  const int64_t ctiles = (C + kTile - 1) / kTile, items = N * ctiles;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t n = it / ctiles, c = (it % ctiles) * kTile + threadIdx.x;
    double acc = 0.0;
    if (c < C) {
      const T* xn = x + n * HW * C + c;
      for (int64_t p = threadIdx.y; p < HW; p += kRows) acc += static_cast<double>(xn[p * C]);
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      double s = 0.0;
      for (int y = 0; y < kRows; ++y) s += sh[y][threadIdx.x];
      out[n * C + c] = static_cast<T>(s / static_cast<double>(HW));
    }
    __syncthreads();  // sh is rewritten by the next item
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    gap_backward_kernel(const T* __restrict__ gy, int64_t N, int64_t HW, int64_t C, T* __restrict__ gx) {
  const T hw = static_cast<T>(HW);
  const int64_t total = N * HW * C;
  OFA_GRID_STRIDE(i, total) {
    const int64_t c = i % C, n = i / (HW * C);
    gx[i] = gy[n * C + c] / hw;
  }
}

inline void check_sizes(int64_t N, int64_t HW, int64_t C, const char* op) {
  OFA_CHECK(N >= 0 && HW >= 0 && C >= 0, op, ": bad sizes N ", N, ", HW ", HW, ", C ", C);
}

}  // namespace pool_detail

void Backend::global_avg_pool_forward(DType t, const void* x, int64_t N, int64_t HW, int64_t C, void* out, Stream s) {
  pool_detail::check_sizes(N, HW, C, "global_avg_pool_forward (CUDA)");
  OFA_CUDA_FLOATING(t, "global_avg_pool_forward (CUDA)", [&] {
    if (N * C == 0) return;
    const int64_t items = N * ceil_div(C, pool_detail::kTile);
    const unsigned grid = static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(items, max_blocks())));
    OFA_LAUNCH((pool_detail::gap_forward_kernel<scalar_t>), grid, dim3(pool_detail::kTile, pool_detail::kRows), 0, s)
    (static_cast<const scalar_t*>(x), N, HW, C, static_cast<scalar_t*>(out));
    OFA_CHECK_LAUNCH("gap_forward_kernel");
  });
}

void Backend::global_avg_pool_backward(DType t, const void* gy, int64_t N, int64_t HW, int64_t C, void* gx, Stream s) {
  pool_detail::check_sizes(N, HW, C, "global_avg_pool_backward (CUDA)");
  OFA_CUDA_FLOATING(t, "global_avg_pool_backward (CUDA)", [&] {
    if (N * HW * C == 0) return;
    OFA_LAUNCH((pool_detail::gap_backward_kernel<scalar_t>), grid_for(N * HW * C), kThreads, 0, s)
    (static_cast<const scalar_t*>(gy), N, HW, C, static_cast<scalar_t*>(gx));
    OFA_CHECK_LAUNCH("gap_backward_kernel");
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
