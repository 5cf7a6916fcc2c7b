#include "engine/random.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/dispatch.h"
#include "kernels/common/philox.h"
#include "kernels/common/strided_loop.h"

namespace ofa {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {

// Fills t with f(seed, counter) where the counter of the element at row-major
// position i is base + i, whatever t's strides: the draw does not depend on
// memory layout or thread count.
// On a CUDA tensor the same draws come from the device kernel (dist, p0, p1:
// kernels::CudaBackend::random_fill).
template <class F>
void fill_with(Tensor& t, Generator* g, const char* name, kernels::RandomDist dist, double p0, double p1, F&& f) {
  OFA_CHECK(!(GradMode::enabled() && t.requires_grad()), name, ": in-place fill of a tensor that requires grad; use NoGradGuard");
  OFA_CHECK(is_floating(t.dtype()), name, ": needs a floating tensor, got ", dtype_name(t.dtype()));
  Generator& gen = g ? *g : default_generator();
  const uint64_t seed = gen.state().seed;
  const uint64_t base = gen.advance(static_cast<uint64_t>(t.numel()));
  const Shape rm = contiguous_strides(t.shape());  // row-major position of each element
  if (t.device().is_cuda()) {
    if (t.numel() > 0)
      cuda_backend().random_fill(t.dtype(), t.raw_data(), cuda_args<2>(name, t.shape(), {t.strides(), rm}), seed, base,
                                 dist, p0, p1, cuda_stream(t.device().index));
    return;
  }
  OFA_DISPATCH_FLOATING(t.dtype(), name, [&] {
    scalar_t* p = t.data<scalar_t>();
    kernels::StridedLayout<2> L{t.shape(), {t.strides(), rm}};
    kernels::for_each_strided<2>(L, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& s) {
      for (int64_t i = 0; i < n; ++i)
        p[off[0] + i * s[0]] = static_cast<scalar_t>(f(seed, base + static_cast<uint64_t>(off[1] + i * s[1]), scalar_t()));
    });
  });
}

template <class T>
T unit(const kernels::Philox4& r) {
  if constexpr (std::is_same_v<T, float>) return kernels::u32_to_unit_float(r.v[0]);
  else return kernels::u64_to_unit_double(r.v[0], r.v[1]);
}

}  // namespace

void uniform_(Tensor& t, double lo, double hi, Generator* g) {
  fill_with(t, g, "uniform_", kernels::RandomDist::Uniform, lo, hi, [=](uint64_t seed, uint64_t c, auto tag) {
    using T = decltype(tag);
    return static_cast<T>(lo) + static_cast<T>(hi - lo) * unit<T>(kernels::philox4x32_10(seed, c));
  });
}

void normal_(Tensor& t, double mean, double std, Generator* g) {
  fill_with(t, g, "normal_", kernels::RandomDist::Normal, mean, std, [=](uint64_t seed, uint64_t c, auto) {
    // Box-Muller on two independent uniforms of the same counter.
    kernels::Philox4 r = kernels::philox4x32_10(seed, c);
    double u1 = kernels::u64_to_unit_double(r.v[0], r.v[1]);
    double u2 = kernels::u64_to_unit_double(r.v[2], r.v[3]);
    u1 = u1 < 1e-300 ? 1e-300 : u1;
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

void bernoulli_(Tensor& t, double p, Generator* g) {
  OFA_CHECK(p >= 0.0 && p <= 1.0, "bernoulli_: probability ", p, " outside [0, 1]");
  fill_with(t, g, "bernoulli_", kernels::RandomDist::Bernoulli, p, 0.0, [=](uint64_t seed, uint64_t c, auto) {
    const kernels::Philox4 r = kernels::philox4x32_10(seed, c);
    return kernels::u64_to_unit_double(r.v[0], r.v[1]) < p ? 1.0 : 0.0;
  });
}

Tensor rand(const Shape& shape, DType dt, Generator* g) {
  Tensor t = empty(shape, dt);
  uniform_(t, 0.0, 1.0, g);
  return t;
}

Tensor randn(const Shape& shape, DType dt, Generator* g) {
  Tensor t = empty(shape, dt);
  normal_(t, 0.0, 1.0, g);
  return t;
}

}  // namespace ofa
