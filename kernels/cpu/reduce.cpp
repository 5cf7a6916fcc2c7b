#include "kernels/cpu/reduce.h"

namespace ofa::kernels::cpu {

template <class T>
void reduce_sum(const T* in, const std::vector<int64_t>& ks, const std::vector<int64_t>& kst,
                const std::vector<int64_t>& rs, const std::vector<int64_t>& rst, T* out, double scale) {
  int64_t n_out = 1, n_red = 1;
  for (int64_t s : ks) n_out *= s;
  for (int64_t s : rs) n_red *= s;
  const int nk = static_cast<int>(ks.size()), nr = static_cast<int>(rs.size());
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
