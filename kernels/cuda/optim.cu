// Optimizer steps as multi-tensor apply: the tensors of a step are split into
// (tensor, chunk of kChunk elements) pairs; a table of the tensors and one of
// the pairs go to Scratch device memory in one copy, and each launch (a group
// of whole tensors, at most kPairsPerLaunch pairs) gives its blocks pairs in
// a grid-stride loop. Per element the update is kernels/common/optim_math.h,
// the CPU twin's function, with the coefficients rounded from double to T as
// the CPU caller (nn/optim.cpp) does; nvcc compiles this file with
// -fmad=false so that no FMA changes the rounding: bitwise the CPU's result.
#include <algorithm>
#include <cstring>

#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

namespace ofa::kernels::OFA_CUDA_NS {

namespace {

constexpr int64_t kChunk = 4096;            // elements of one (tensor, chunk) pair
constexpr int64_t kPairsPerLaunch = 16384;  // a launch covers whole tensors up to about this many pairs

struct Pair {
  int64_t tensor, chunk;
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(SgdCoeffs<T> c, const OptimTensor* __restrict__ ts, const Pair* __restrict__ pairs, int64_t npairs) {
  for (int64_t q = blockIdx.x; q < npairs; q += gridDim.x) {
    const Pair pr = pairs[q];
    const OptimTensor t = ts[pr.tensor];
    T* p = static_cast<T*>(t.p);
    const T* g = static_cast<const T*>(t.g);
    T* buf = static_cast<T*>(t.buf0);
    const int64_t lo = pr.chunk * kChunk, hi = lo + kChunk < t.n ? lo + kChunk : t.n;
    if (c.momentum == T(0)) {
      for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        T unused = T(0);  // no momentum buffer, as the CPU loop
        sgd_update(c, false, p[i], g[i], unused);
      }
    } else {
      for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) sgd_update(c, t.first, p[i], g[i], buf[i]);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    adam_kernel(AdamCoeffs<T> c, const OptimTensor* __restrict__ ts, const Pair* __restrict__ pairs, int64_t npairs) {
  for (int64_t q = blockIdx.x; q < npairs; q += gridDim.x) {
    const Pair pr = pairs[q];
    const OptimTensor t = ts[pr.tensor];
    T* p = static_cast<T*>(t.p);
    const T* g = static_cast<const T*>(t.g);
    T* m = static_cast<T*>(t.buf0);
    T* v = static_cast<T*>(t.buf1);
    const int64_t lo = pr.chunk * kChunk, hi = lo + kChunk < t.n ? lo + kChunk : t.n;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) adam_update(c, p[i], g[i], m[i], v[i]);
  }
}

// The device tables of one step and the launches' pair ranges.
struct Plan {
  const OptimTensor* ts = nullptr;
  const Pair* pairs = nullptr;
  std::vector<std::pair<int64_t, int64_t>> launches;  // [first pair, end pair)
};

Plan make_plan(Backend& be, const std::vector<OptimTensor>& in, bool adam, bool momentum, const char* op,
               Scratch& scratch, Stream s) {
  std::vector<OptimTensor> ts;
  std::vector<Pair> pairs;
  Plan plan;
  int64_t launch_start = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const OptimTensor& t = in[i];
    OFA_CHECK(t.n >= 0, op, ": tensor ", i, " has negative size ", t.n);
    if (t.n == 0) continue;
    OFA_CHECK(t.p != nullptr && t.g != nullptr, op, ": tensor ", i, " (", t.n, " elements) without parameter or gradient");
    OFA_CHECK(!(adam || momentum) || t.buf0 != nullptr, op, ": tensor ", i, " without its ",
              adam ? "exp_avg" : "momentum buffer");
    OFA_CHECK(!adam || t.buf1 != nullptr, op, ": tensor ", i, " without its exp_avg_sq");
    const int64_t ti = static_cast<int64_t>(ts.size());
    ts.push_back(t);
    for (int64_t c = 0; c < ceil_div(t.n, kChunk); ++c) pairs.push_back({ti, c});
    const int64_t end = static_cast<int64_t>(pairs.size());
    if (end - launch_start >= kPairsPerLaunch) {
      plan.launches.emplace_back(launch_start, end);
      launch_start = end;
    }
  }
  const int64_t np = static_cast<int64_t>(pairs.size());
  if (np > launch_start) plan.launches.emplace_back(launch_start, np);
  if (np == 0) return plan;
  const size_t tbytes = ts.size() * sizeof(OptimTensor), pbytes = pairs.size() * sizeof(Pair);
  const size_t toff = (tbytes + 255) / 256 * 256;
  std::vector<unsigned char> host(toff + pbytes, 0);
  std::memcpy(host.data(), ts.data(), tbytes);
  std::memcpy(host.data() + toff, pairs.data(), pbytes);
  unsigned char* dev = static_cast<unsigned char*>(scratch.get(host.size()));
  OFA_CHECK(dev != nullptr, op, ": no scratch for the tensor table (", host.size(), " bytes)");
  // Pageable source: the copy has taken the bytes when the call returns.
  be.memcpy_async(dev, host.data(), host.size(), CopyKind::HostToDevice, s);
  plan.ts = reinterpret_cast<const OptimTensor*>(dev);
  plan.pairs = reinterpret_cast<const Pair*>(dev + toff);
  return plan;
}

}  // namespace

void Backend::sgd_step(DType t, const SgdCoeffs<double>& cd, const std::vector<OptimTensor>& ts, Scratch& scratch,
                       Stream s) {
  const char* op = "sgd_step (CUDA)";
  OFA_CUDA_FLOATING(t, op, [&] {
    using T = scalar_t;
    const SgdCoeffs<T> c{static_cast<T>(cd.neg_lr), static_cast<T>(cd.momentum),
                         static_cast<T>(cd.one_minus_dampening), static_cast<T>(cd.weight_decay), cd.nesterov};
    const Plan plan = make_plan(*this, ts, false, c.momentum != T(0), op, scratch, s);
    for (const auto& [a, b] : plan.launches) {
      OFA_LAUNCH((sgd_kernel<T>), grid_for(b - a, 1), kThreads, 0, s)(c, plan.ts, plan.pairs + a, b - a);
      OFA_CHECK_LAUNCH("sgd_kernel");
    }
  });
}

void Backend::adam_step(DType t, const AdamCoeffs<double>& cd, const std::vector<OptimTensor>& ts, Scratch& scratch,
                        Stream s) {
  const char* op = "adam_step (CUDA)";
  OFA_CUDA_FLOATING(t, op, [&] {
    using T = scalar_t;
    const AdamCoeffs<T> c{static_cast<T>(cd.beta1),        static_cast<T>(cd.one_minus_beta1),
                          static_cast<T>(cd.beta2),        static_cast<T>(cd.one_minus_beta2),
                          static_cast<T>(cd.weight_decay), static_cast<T>(cd.bias_correction2_sqrt),
                          static_cast<T>(cd.eps),          static_cast<T>(cd.neg_step_size)};
    const Plan plan = make_plan(*this, ts, true, false, op, scratch, s);
    for (const auto& [a, b] : plan.launches) {
      OFA_LAUNCH((adam_kernel<T>), grid_for(b - a, 1), kThreads, 0, s)(c, plan.ts, plan.pairs + a, b - a);
      OFA_CHECK_LAUNCH("adam_kernel");
    }
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
