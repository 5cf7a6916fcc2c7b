#include "kernels/cpu/reduce.h"

#include <algorithm>

namespace ofa::kernels::cpu {

namespace {

// Channel block of the fast path (double sums kept in a local array).
constexpr int64_t kBlock = 64;

// Fast path when kept dim u has stride 1 (e.g. an NHWC [N, C, H, W] summed to
// [N, C, 1, 1]): a block of contiguous elements of dim u is accumulated at
// once for every point of the reduced space, instead of walking the reduced
// dims with a large stride per output. Each output is still summed in double
// in a fixed order (row-major over the reduced dims, the inner one four
// points at a time) by one thread, so the result does not depend on the
// thread count.
template <class T>
void reduce_sum_rows(const T* in, const std::vector<int64_t>& ks, const std::vector<int64_t>& kst,
                     const std::vector<int64_t>& rs, const std::vector<int64_t>& rst, int u, T* out,
                     double scale, int64_t n_out, int64_t n_red) {
  const int nk = static_cast<int>(ks.size()), nr = static_cast<int>(rs.size());
  const int64_t Cu = ks[u], nb = (Cu + kBlock - 1) / kBlock, outer = n_out / Cu;
  int64_t ostride = 1;  // out stride of dim u (row-major over the kept dims)
  for (int d = u + 1; d < nk; ++d) ostride *= ks[d];
#pragma omp parallel for schedule(static) if (outer * nb > 1 && n_out * n_red > 32768)
  for (int64_t t = 0; t < outer * nb; ++t) {
    const int64_t ob = t / nb, c0 = (t % nb) * kBlock, c1 = std::min(Cu, c0 + kBlock);
    // Input and output offsets of the kept point `ob` (dim u at 0).
    int64_t base = 0, obase = 0, rem = ob, om = 1;
    for (int d = nk - 1; d >= 0; --d) {
      if (d == u) {
        om *= ks[d];
        continue;
      }
      const int64_t i = rem % ks[d];
      rem /= ks[d];
      base += i * kst[d];
      obase += i * om;
      om *= ks[d];
    }
    double acc[kBlock] = {};
    const int64_t w = c1 - c0;
    std::vector<int64_t> idx(nr, 0);
    const int64_t inner = rs[nr - 1], istride = rst[nr - 1];
    if (inner > 0) {
      for (int64_t r = 0; r < n_red; r += inner) {
        int64_t off = base + c0;
        for (int d = 0; d < nr - 1; ++d) off += idx[d] * rst[d];
        // Four points of the inner reduced dim per sweep (fixed pairing).
        int64_t i = 0;
        for (; i + 4 <= inner; i += 4) {
          const T* p = in + off + i * istride;
#pragma omp simd
          for (int64_t c = 0; c < w; ++c)
            acc[c] += (static_cast<double>(p[c]) + static_cast<double>(p[istride + c])) +
                      (static_cast<double>(p[2 * istride + c]) + static_cast<double>(p[3 * istride + c]));
        }
        for (; i < inner; ++i) {
          const T* p = in + off + i * istride;
#pragma omp simd
          for (int64_t c = 0; c < w; ++c) acc[c] += static_cast<double>(p[c]);
        }
        for (int d = nr - 2; d >= 0; --d) {
          if (++idx[d] < rs[d]) break;
          idx[d] = 0;
        }
      }
    }
    for (int64_t c = 0; c < w; ++c) out[obase + (c0 + c) * ostride] = static_cast<T>(acc[c] * scale);
  }
}

}  // namespace

template <class T>
void reduce_sum(const T* in, const std::vector<int64_t>& ks, const std::vector<int64_t>& kst,
                const std::vector<int64_t>& rs, const std::vector<int64_t>& rst, T* out, double scale) {
  int64_t n_out = 1, n_red = 1;
  for (int64_t s : ks) n_out *= s;
  for (int64_t s : rs) n_red *= s;
  const int nk = static_cast<int>(ks.size()), nr = static_cast<int>(rs.size());
  if (nr > 0 && n_out > 0) {
    for (int u = nk - 1; u >= 0; --u)
      if (kst[u] == 1 && ks[u] >= 8) {
        reduce_sum_rows(in, ks, kst, rs, rst, u, out, scale, n_out, n_red);
        return;
      }
  }
#pragma omp parallel for schedule(static) if (n_out > 1 && n_out * n_red > 32768)
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t base = 0, rem = o;
    for (int d = nk - 1; d >= 0; --d) {
      base += (rem % ks[d]) * kst[d];
      rem /= ks[d];
    }
    double acc = 0.0;
    if (nr == 0) {
      acc = static_cast<double>(in[base]);
    } else {
      // Odometer over the reduced dims; the last one is the inner run.
      std::vector<int64_t> idx(nr, 0);
      const int64_t inner = rs[nr - 1], istride = rst[nr - 1];
      if (inner > 0) {
        for (int64_t r = 0; r < n_red; r += inner) {
          int64_t off = base;
          for (int d = 0; d < nr - 1; ++d) off += idx[d] * rst[d];
          const T* p = in + off;
          for (int64_t i = 0; i < inner; ++i) acc += static_cast<double>(p[i * istride]);
          for (int d = nr - 2; d >= 0; --d) {
            if (++idx[d] < rs[d]) break;
            idx[d] = 0;
          }
        }
      }
    }
    out[o] = static_cast<T>(acc * scale);
  }
}

template void reduce_sum<float>(const float*, const std::vector<int64_t>&, const std::vector<int64_t>&,
                                const std::vector<int64_t>&, const std::vector<int64_t>&, float*, double);
template void reduce_sum<double>(const double*, const std::vector<int64_t>&, const std::vector<int64_t>&,
                                 const std::vector<int64_t>&, const std::vector<int64_t>&, double*, double);

}  // namespace ofa::kernels::cpu
