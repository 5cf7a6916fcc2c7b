// Elementwise kernels: fill, copy (with type conversion), axpy, scale,
// binary ops with broadcasting, scalar ops, activations and the random fills.
// Every operand is read through StridedArgs (up to 8 dims after coalescing,
// zero strides broadcast), one grid-stride loop over the elements in operand
// 0's memory order. The arithmetic is the CPU kernels' own (the shared
// formulas of kernels/common), so results match element by element.
#include "kernels/cuda/backend_impl.h"

#include <cmath>

#include "kernels/common/philox.h"

namespace ofa::kernels::OFA_CUDA_NS {

namespace {

template <class T>
__global__ void fill_kernel(T* base, StridedArgs<1> a, T v) {
  OFA_GRID_STRIDE(e, a.numel) {
    int64_t off[1];
    a.offsets(e, off);
    base[off[0]] = v;
  }
}

template <class D, class S>
__global__ void copy_kernel(D* dst, const S* src, StridedArgs<2> a) {
  OFA_GRID_STRIDE(e, a.numel) {
    int64_t off[2];
    a.offsets(e, off);
    dst[off[0]] = static_cast<D>(src[off[1]]);
  }
}

template <class T>
__global__ void axpy_kernel(T* dst, const T* src, T alpha, StridedArgs<2> a) {
  OFA_GRID_STRIDE(e, a.numel) {
    int64_t off[2];
    a.offsets(e, off);
    dst[off[0]] += alpha * src[off[1]];
  }
}

template <class T>
__global__ void scale_kernel(T* base, T v, StridedArgs<1> a) {
  OFA_GRID_STRIDE(e, a.numel) {
    int64_t off[1];
    a.offsets(e, off);
    base[off[0]] *= v;
  }
}

template <class T, BinOp OP>
__device__ __forceinline__ T binary_apply(T x, T y) {
  if constexpr (OP == BinOp::Add) return x + y;
  else if constexpr (OP == BinOp::Sub) return x - y;
  else return x * y;
}

template <class T, BinOp OP>
__global__ void binary_kernel(T* out, const T* a, const T* b, StridedArgs<3> args) {
  OFA_GRID_STRIDE(e, args.numel) {
    int64_t off[3];
    args.offsets(e, off);
    out[off[0]] = binary_apply<T, OP>(a[off[1]], b[off[2]]);
  }
}

template <class T>
__global__ void scalar_kernel(ScalarOp op, const T* x, T v, T* y, int64_t n) {
  if (op == ScalarOp::Add) {
    OFA_GRID_STRIDE(i, n) y[i] = x[i] + v;
  } else {
    OFA_GRID_STRIDE(i, n) y[i] = x[i] * v;
  }
}

template <Act A, class T>
__global__ void act_forward_kernel(const T* x, T* y, int64_t n) {
  OFA_GRID_STRIDE(i, n) y[i] = act_forward_t<A>(x[i]);
}

template <Act A, class T>
__global__ void act_backward_kernel(const T* x, const T* gy, T* gx, int64_t n) {
  OFA_GRID_STRIDE(i, n) gx[i] = gy[i] * act_derivative_t<A>(x[i]);
}

// The CPU's draws (engine/random.cpp): counter = base + row-major position.
template <class T, RandomDist D>
__global__ void random_kernel(T* base, StridedArgs<2> a, uint64_t seed, uint64_t counter, double p0, double p1) {
  OFA_GRID_STRIDE(e, a.numel) {
    int64_t off[2];
    a.offsets(e, off);
    const Philox4 r = philox4x32_10(seed, counter + static_cast<uint64_t>(off[1]));
    T v;
    if constexpr (D == RandomDist::Uniform) {
      T u;
      if constexpr (sizeof(T) == 4) u = u32_to_unit_float(r.v[0]);
      else u = u64_to_unit_double(r.v[0], r.v[1]);
      v = static_cast<T>(p0) + static_cast<T>(p1 - p0) * u;
    } else if constexpr (D == RandomDist::Normal) {
      double u1 = u64_to_unit_double(r.v[0], r.v[1]);
      const double u2 = u64_to_unit_double(r.v[2], r.v[3]);
      u1 = u1 < 1e-300 ? 1e-300 : u1;
      v = static_cast<T>(p0 + p1 * sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2));
    } else {
      v = u64_to_unit_double(r.v[0], r.v[1]) < p0 ? T(1) : T(0);
    }
    base[off[0]] = v;
  }
}

}  // namespace

void Backend::fill(DType t, void* base, const StridedArgs<1>& a, double value, Stream s) {
  if (a.numel == 0) return;
  OFA_DISPATCH_ALL(t, "fill (CUDA)", [&] {
    OFA_LAUNCH((fill_kernel<scalar_t>), grid_for(a.numel), kThreads, 0, s)
    (static_cast<scalar_t*>(base), a, static_cast<scalar_t>(value));
    OFA_CHECK_LAUNCH("fill_kernel");
  });
}

void Backend::copy(DType dst_t, void* dst, DType src_t, const void* src, const StridedArgs<2>& a, Stream s) {
  if (a.numel == 0) return;
  OFA_DISPATCH_ALL(dst_t, "copy (CUDA)", [&] {
    using D = scalar_t;
    OFA_DISPATCH_ALL(src_t, "copy (CUDA)", [&] {
      OFA_LAUNCH((copy_kernel<D, scalar_t>), grid_for(a.numel), kThreads, 0, s)
      (static_cast<D*>(dst), static_cast<const scalar_t*>(src), a);
      OFA_CHECK_LAUNCH("copy_kernel");
    });
  });
}

void Backend::axpy(DType t, void* dst, const void* src, double alpha, const StridedArgs<2>& a, Stream s) {
  if (a.numel == 0) return;
  OFA_DISPATCH_ALL(t, "add_ (CUDA)", [&] {
    OFA_LAUNCH((axpy_kernel<scalar_t>), grid_for(a.numel), kThreads, 0, s)
    (static_cast<scalar_t*>(dst), static_cast<const scalar_t*>(src), static_cast<scalar_t>(alpha), a);
    OFA_CHECK_LAUNCH("axpy_kernel");
  });
}

void Backend::scale(DType t, void* base, double v, const StridedArgs<1>& a, Stream s) {
  if (a.numel == 0) return;
  OFA_CUDA_FLOATING(t, "mul_ (CUDA)", [&] {
    OFA_LAUNCH((scale_kernel<scalar_t>), grid_for(a.numel), kThreads, 0, s)
    (static_cast<scalar_t*>(base), static_cast<scalar_t>(v), a);
    OFA_CHECK_LAUNCH("scale_kernel");
  });
}

void Backend::binary(BinOp op, DType t, void* out, const void* a, const void* b, const StridedArgs<3>& args,
                     Stream s) {
  if (args.numel == 0) return;
  OFA_CUDA_FLOATING(t, "binary op (CUDA)", [&] {
    auto* o = static_cast<scalar_t*>(out);
    auto* pa = static_cast<const scalar_t*>(a);
    auto* pb = static_cast<const scalar_t*>(b);
    const unsigned grid = grid_for(args.numel);
    switch (op) {
      case BinOp::Add:
        OFA_LAUNCH((binary_kernel<scalar_t, BinOp::Add>), grid, kThreads, 0, s)(o, pa, pb, args);
        break;
      case BinOp::Sub:
        OFA_LAUNCH((binary_kernel<scalar_t, BinOp::Sub>), grid, kThreads, 0, s)(o, pa, pb, args);
        break;
      case BinOp::Mul:
        OFA_LAUNCH((binary_kernel<scalar_t, BinOp::Mul>), grid, kThreads, 0, s)(o, pa, pb, args);
        break;
    }
    OFA_CHECK_LAUNCH("binary_kernel");
  });
}

void Backend::scalar_op(ScalarOp op, DType t, const void* x, double v, void* y, int64_t n, Stream s) {
  if (n == 0) return;
  OFA_CUDA_FLOATING(t, "scalar op (CUDA)", [&] {
    OFA_LAUNCH((scalar_kernel<scalar_t>), grid_for(n), kThreads, 0, s)
    (op, static_cast<const scalar_t*>(x), static_cast<scalar_t>(v), static_cast<scalar_t*>(y), n);
    OFA_CHECK_LAUNCH("scalar_kernel");
  });
}

void Backend::activation_forward(Act act, DType t, const void* x, void* y, int64_t n, Stream s) {
  if (n == 0) return;
  OFA_CUDA_FLOATING(t, "activation (CUDA)", [&] {
    dispatch_act(act, [&](auto a) {
      OFA_LAUNCH((act_forward_kernel<decltype(a)::value, scalar_t>), grid_for(n), kThreads, 0, s)
      (static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), n);
      OFA_CHECK_LAUNCH("act_forward_kernel");
    });
  });
}

void Backend::activation_backward(Act act, DType t, const void* x, const void* gy, void* gx, int64_t n, Stream s) {
  if (n == 0) return;
  OFA_CUDA_FLOATING(t, "activation backward (CUDA)", [&] {
    dispatch_act(act, [&](auto a) {
      OFA_LAUNCH((act_backward_kernel<decltype(a)::value, scalar_t>), grid_for(n), kThreads, 0, s)
      (static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(gy), static_cast<scalar_t*>(gx), n);
      OFA_CHECK_LAUNCH("act_backward_kernel");
    });
  });
}

void Backend::random_fill(DType t, void* base, const StridedArgs<2>& a, uint64_t seed, uint64_t counter,
                          RandomDist dist, double p0, double p1, Stream s) {
  if (a.numel == 0) return;
  OFA_CUDA_FLOATING(t, "random fill (CUDA)", [&] {
    auto* p = static_cast<scalar_t*>(base);
    const unsigned grid = grid_for(a.numel);
    switch (dist) {
      case RandomDist::Uniform:
        OFA_LAUNCH((random_kernel<scalar_t, RandomDist::Uniform>), grid, kThreads, 0, s)(p, a, seed, counter, p0, p1);
        break;
      case RandomDist::Normal:
        OFA_LAUNCH((random_kernel<scalar_t, RandomDist::Normal>), grid, kThreads, 0, s)(p, a, seed, counter, p0, p1);
        break;
      case RandomDist::Bernoulli:
        OFA_LAUNCH((random_kernel<scalar_t, RandomDist::Bernoulli>), grid, kThreads, 0, s)
        (p, a, seed, counter, p0, p1);
        break;
    }
    OFA_CHECK_LAUNCH("random_kernel");
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
