#include "kernels/cpu/binary.h"

#include "kernels/common/strided_loop.h"

namespace ofa::kernels::cpu {

// The SE pattern x [N,C,H,W] (channels-last) (op) s [N,C,1,1]: after ordering
// and coalescing, shape [outer, mid, inner] with `a` and `out` dense and `b`
// dense along inner but repeated across mid. One row of b is reused for every
// pixel, so the inner loop vectorises over C without the generic walker's
// per-run index arithmetic. Returns false when the layout does not match.
template <class T, class F>
static bool run_row_broadcast(const std::vector<int64_t>& shape, T* out, const std::vector<int64_t>& os,
                              const T* a, const std::vector<int64_t>& as, const T* b,
                              const std::vector<int64_t>& bs, F f) {
  StridedLayout<3> L{shape, {os, as, bs}};
  for (int64_t s : L.shape)
    if (s == 0) return false;
  L.order_by_first_operand();
  L.coalesce();
  const auto& sh = L.shape;
  const auto &so = L.strides[0], &sa = L.strides[1], &sb = L.strides[2];
  int64_t outer = 1, mid, inner;
  int64_t o_os = 0, o_as = 0, o_bs = 0;
  if (sh.size() == 3) {
    outer = sh[0];
    o_os = so[0], o_as = sa[0], o_bs = sb[0];
  } else if (sh.size() != 2) {
    return false;
  }
  const size_t m = sh.size() - 2, i = sh.size() - 1;
  mid = sh[m];
  inner = sh[i];
  if (so[i] != 1 || sa[i] != 1 || sb[i] != 1 || sb[m] != 0 || so[m] != inner || sa[m] != inner) return false;
  if (o_os != mid * inner && outer > 1) return false;
  if (o_as != mid * inner && outer > 1) return false;
#pragma omp parallel for schedule(static) collapse(2) if (outer * mid * inner > 32768)
  for (int64_t n = 0; n < outer; ++n) {
    for (int64_t p = 0; p < mid; ++p) {
      T* o = out + n * o_os + p * inner;
      const T* pa = a + n * o_as + p * inner;
      const T* pb = b + n * o_bs;
#pragma omp simd  // o may equal pa (in place), which is still dependence-free
      for (int64_t k = 0; k < inner; ++k) o[k] = f(pa[k], pb[k]);
    }
  }
  return true;
}

template <class T, class F>
static void run(const std::vector<int64_t>& shape, T* out, const std::vector<int64_t>& os, const T* a,
                const std::vector<int64_t>& as, const T* b, const std::vector<int64_t>& bs, F f) {
  if (run_row_broadcast(shape, out, os, a, as, b, bs, f)) return;
  // The broadcast row as the first operand (s * x): same walk, f's argument order kept.
  if (run_row_broadcast(shape, out, os, b, bs, a, as, [f](T y, T x) { return f(x, y); })) return;
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
