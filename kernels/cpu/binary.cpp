#include "kernels/cpu/binary.h"

#include "kernels/common/strided_loop.h"

namespace ofa::kernels::cpu {

template <class T, class F>
static void run(const std::vector<int64_t>& shape, T* out, const std::vector<int64_t>& os, const T* a,
                const std::vector<int64_t>& as, const T* b, const std::vector<int64_t>& bs, F f) {
  StridedLayout<3> L{shape, {os, as, bs}};
  for_each_strided<3>(L, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& s) {
    T* o = out + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
      const T bv = *pb;
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], bv);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(pa[i * s[1]], pb[i * s[2]]);
    }
  });
}

template <class T>
void binary_strided(BinOp op, const std::vector<int64_t>& shape, T* out, const std::vector<int64_t>& os, const T* a,
                    const std::vector<int64_t>& as, const T* b, const std::vector<int64_t>& bs) {
  switch (op) {
    case BinOp::Add: run(shape, out, os, a, as, b, bs, [](T x, T y) { return x + y; }); break;
    case BinOp::Sub: run(shape, out, os, a, as, b, bs, [](T x, T y) { return x - y; }); break;
    case BinOp::Mul: run(shape, out, os, a, as, b, bs, [](T x, T y) { return x * y; }); break;
  }
}

template <class T>
void scalar_op(ScalarOp op, const T* x, T s, T* y, int64_t n) {
  if (op == ScalarOp::Add) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] + s;
  } else {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
  }
}

#define OFA_INST(T)                                                                                              \
  template void binary_strided<T>(BinOp, const std::vector<int64_t>&, T*, const std::vector<int64_t>&, const T*, \
                                  const std::vector<int64_t>&, const T*, const std::vector<int64_t>&);           \
  template void scalar_op<T>(ScalarOp, const T*, T, T*, int64_t);
OFA_INST(float)
OFA_INST(double)
#undef OFA_INST

}  // namespace ofa::kernels::cpu
