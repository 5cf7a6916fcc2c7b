// Grouped 2-D convolution on NHWC activations: forward, input gradient,
// weight gradient (as kernels/cpu/conv2d.h).
//
// Pointwise convolutions (1x1, stride 1, no padding; any groups) are one
// strided-batched GEMM over the N*H*W pixels (batch = groups), reading the
// weight view [Cout, K_g] (element (o, q) at w[o * w_rs + q * w_cs]) in place:
//   forward          y  = x W^T   (bias: fill_rows first, then beta = 1)
//   input gradient   dx = dy W
//   weight gradient  dw = dy^T x  (dw dense [Cout, K_g])
// A weight view that is not BLAS-compatible is repacked dense into Scratch
// first (handled, not rejected).
//
// The others go to cuDNN with every descriptor NHWC: x [N, H, W, Cin], y
// [N, Ho, Wo, Cout] and the filter [Cout, kh, kw, Cin/groups] (KRSC). Our
// weight is [Cout, Cin/groups, kh, kw], so it is repacked into Scratch in
// KRSC order by a small kernel (skipped when the view is dense and the two
// orders coincide: Cin/groups == 1 or 1x1), and the weight gradient comes
// out of cuDNN in KRSC order into Scratch and is permuted into the dense
// [Cout, K_g] dw (same exception). Groups via cudnnSetConvolutionGroupCount;
// FMA math (no TF32); the algorithm is the first deterministic one of
// cuDNN's heuristics for the geometry, chosen once and cached; its workspace
// comes from Scratch. Float64, and float32 geometries that cuDNN has no
// deterministic FMA-math algorithm for (or refuses as not supported), run the
// direct kernels below on the same numbers. Under OFA_EMULATED the float32
// cuDNN calls are reference loops of cuDNN's cross-correlation semantics.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include "kernels/common/conv_math.h"
#include "kernels/cpu/gemm.h"
#if !OFA_EMULATED
#include "kernels/cuda/cudnn_status.h"
#endif

namespace ofa::kernels::OFA_CUDA_NS {

namespace {

// ---------------------------------------------------------------- weight layouts

// dst[o, q] = w[o * w_rs + q * w_cs] for q in (ci, i, j) order; to_krsc
// stores it at dst[o, (i * kw + j) * cg + ci] (cuDNN's NHWC filter) instead.
template <class T>
__global__ void __launch_bounds__(kThreads)
    repack_weight_kernel(const T* __restrict__ w, int64_t Cout, int64_t K, int64_t w_rs, int64_t w_cs, int64_t khw,
                         int64_t cg, bool to_krsc, T* __restrict__ dst) {
  const int64_t total = Cout * K;
  OFA_GRID_STRIDE(e, total) {
    const int64_t o = e / K, q = e % K;
    const int64_t d = to_krsc ? o * K + (q % khw) * cg + q / khw : e;
    dst[d] = w[o * w_rs + q * w_cs];
  }
}

// dw[o, q] (dense, (ci, i, j) order) = src[o, (i * kw + j) * cg + ci] (KRSC).
template <class T>
__global__ void __launch_bounds__(kThreads)
    krsc_to_dense_kernel(const T* __restrict__ src, int64_t Cout, int64_t K, int64_t khw, int64_t cg,
                         T* __restrict__ dw) {
  const int64_t total = Cout * K;
  OFA_GRID_STRIDE(e, total) {
    const int64_t o = e / K, q = e % K;
    dw[e] = src[o * K + (q % khw) * cg + q / khw];
  }
}

template <class T>
const T* repack_weight(const Conv2dGeom& g, const T* w, int64_t w_rs, int64_t w_cs, bool to_krsc, Scratch& scratch,
                       Stream s) {
  const int64_t K = g.k_g();
  T* dst = static_cast<T*>(scratch.get(static_cast<size_t>(g.Cout * K) * sizeof(T)));
  OFA_LAUNCH((repack_weight_kernel<T>), grid_for(g.Cout * K), kThreads, 0, s)
  (w, g.Cout, K, w_rs, w_cs, g.kh * g.kw, g.cin_g(), to_krsc, dst);
  OFA_CHECK_LAUNCH("repack_weight_kernel");
  return dst;
}

void check_geom(const Conv2dGeom& g, const char* op) {
  OFA_CHECK(g.N >= 0 && g.H >= 0 && g.W >= 0 && g.Cin >= 0 && g.Cout >= 0 && g.groups >= 1 && g.kh >= 1 &&
                g.kw >= 1 && g.sh >= 1 && g.sw >= 1 && g.ph >= 0 && g.pw >= 0,
            op, ": bad geometry (N ", g.N, ", H ", g.H, ", W ", g.W, ", Cin ", g.Cin, ", Cout ", g.Cout, ", kernel ",
            g.kh, "x", g.kw, ", stride ", g.sh, "x", g.sw, ", pad ", g.ph, "x", g.pw, ", groups ", g.groups, ")");
  OFA_CHECK(g.Cin % g.groups == 0 && g.Cout % g.groups == 0, op, ": ", g.groups, " groups do not divide Cin ", g.Cin,
            " and Cout ", g.Cout);
  OFA_CHECK(g.Ho == conv_out_size(g.H, g.kh, g.sh, g.ph) && g.Wo == conv_out_size(g.W, g.kw, g.sw, g.pw), op,
            ": output ", g.Ho, "x", g.Wo, " does not match the input ", g.H, "x", g.W, " (expected ",
            conv_out_size(g.H, g.kh, g.sh, g.ph), "x", conv_out_size(g.W, g.kw, g.sw, g.pw), ")");
}

// True when the view is dense [Cout, K_g] in KRSC order as well.
bool dense_krsc(const Conv2dGeom& g, int64_t w_rs, int64_t w_cs) {
  return (g.cin_g() == 1 || g.kh * g.kw == 1) && (w_cs == 1 || g.k_g() == 1) && (w_rs == g.k_g() || g.Cout == 1);
}

// ---------------------------------------------------------------- pointwise: one GEMM

using MatArg = CudaBackend::MatArg;

// The weight of group 0 as [og, cg] through (rs, cs), groups one og*rs apart;
// repacked dense when BLAS cannot read it in place.
template <class T>
MatArg pointwise_weight(Backend& be, const Conv2dGeom& g, const T* w, int64_t w_rs, int64_t w_cs, Scratch& scratch,
                        Stream s) {
  const int64_t og = g.cout_g(), cg = g.cin_g();
  if (!cpu::blas_ready(og, cg, w_rs, w_cs)) {
    w = repack_weight(g, w, w_rs, w_cs, false, scratch, s);
    w_rs = cg;
    w_cs = 1;
  }
  return {w, og, cg, w_rs, w_cs, og * w_rs};
}

// ---------------------------------------------------------------- cuDNN

// The numbers of the descriptors (all NHWC).
struct DnnConv {
  int n, c, h, w;   // x
  int k, cg, r, s;  // filter [k, r, s, cg]
  int ph, pw, sh, sw, groups;
  int ho, wo;  // y [n, ho, wo, k]
};

DnnConv dnn_conv(const Conv2dGeom& g, const char* op) {
  for (int64_t v : {g.N, g.H, g.W, g.Cin, g.Cout, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw, g.groups, g.Ho, g.Wo})
    OFA_CHECK(v <= INT_MAX, op, ": size ", v, " outside cuDNN's 32-bit sizes");
  for (int64_t v : {g.N * g.H * g.W * g.Cin, g.N * g.Ho * g.Wo * g.Cout, g.Cout * g.k_g()})
    OFA_CHECK(v <= INT_MAX, op, ": a tensor of ", v, " elements is beyond cuDNN's 2^31 elements");
  auto i = [](int64_t v) { return static_cast<int>(v); };
  return {i(g.N),  i(g.Cin), i(g.H),  i(g.W),  i(g.Cout), i(g.cin_g()), i(g.kh),     i(g.kw),
          i(g.ph), i(g.pw),  i(g.sh), i(g.sw), i(g.groups), i(g.Ho),    i(g.Wo)};
}

enum class ConvOp { Forward, BackwardData, BackwardFilter };

// ---------------------------------------------------------------- direct kernels

// Hand-written convolutions on the numbers of the cuDNN calls (NHWC x and y,
// KRSC filter): forward and input gradient gather one output element per
// thread (no atomics); the weight gradient is one block per element, a
// fixed-order tree sum over the N*Ho*Wo pixels. Deterministic. They serve
// float64, which never goes to cuDNN (its NHWC support for double is not
// relied on: PyTorch keeps double convolutions off NHWC cuDNN too), and the
// float32 geometries for which cuDNN offers no deterministic FMA-math
// algorithm.
template <class T>
__global__ void __launch_bounds__(kThreads)
    direct_forward_kernel(DnnConv d, const T* __restrict__ x, const T* __restrict__ w, T beta, T* __restrict__ y) {
  const int64_t kg = d.k / d.groups, total = int64_t(d.n) * d.ho * d.wo * d.k;
  OFA_GRID_STRIDE(e, total) {
    const int64_t o = e % d.k, pix = e / d.k;
    const int64_t q = pix % d.wo, p = (pix / d.wo) % d.ho, n = pix / (int64_t(d.wo) * d.ho);
    const int64_t c0 = (o / kg) * d.cg;
    T acc = T(0);
    for (int64_t r = 0; r < d.r; ++r) {
      const int64_t ih = p * d.sh - d.ph + r;
      if (ih < 0 || ih >= d.h) continue;
      for (int64_t t = 0; t < d.s; ++t) {
        const int64_t iw = q * d.sw - d.pw + t;
        if (iw < 0 || iw >= d.w) continue;
        const T* xp = x + ((n * d.h + ih) * d.w + iw) * d.c + c0;
        const T* wp = w + ((o * d.r + r) * d.s + t) * d.cg;
        for (int64_t c = 0; c < d.cg; ++c) acc += xp[c] * wp[c];
      }
    }
    y[e] = beta == T(0) ? acc : acc + beta * y[e];  // beta 0: y unread
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    direct_backward_data_kernel(DnnConv d, const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx) {
  const int64_t kg = d.k / d.groups, total = int64_t(d.n) * d.h * d.w * d.c;
  OFA_GRID_STRIDE(e, total) {
    const int64_t ci = e % d.c, pix = e / d.c;
    const int64_t iw = pix % d.w, ih = (pix / d.w) % d.h, n = pix / (int64_t(d.w) * d.h);
    const int64_t grp = ci / d.cg, c = ci % d.cg;
    T acc = T(0);
    for (int64_t r = 0; r < d.r; ++r) {
      const int64_t ph = ih + d.ph - r;  // = p * sh for the output row p that reads row ih through tap r
      if (ph < 0 || ph % d.sh != 0 || ph / d.sh >= d.ho) continue;
      for (int64_t t = 0; t < d.s; ++t) {
        const int64_t pw = iw + d.pw - t;
        if (pw < 0 || pw % d.sw != 0 || pw / d.sw >= d.wo) continue;
        const T* dyp = dy + ((n * d.ho + ph / d.sh) * d.wo + pw / d.sw) * d.k;
        for (int64_t o = grp * kg; o < (grp + 1) * kg; ++o) acc += dyp[o] * w[((o * d.r + r) * d.s + t) * d.cg + c];
      }
    }
    dx[e] = acc;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    direct_backward_filter_kernel(DnnConv d, const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dw) {
  __shared__ T part[kThreads];
  const int64_t kg = d.k / d.groups, total = int64_t(d.k) * d.r * d.s * d.cg, M = int64_t(d.n) * d.ho * d.wo;
  const int tid = threadIdx.x;
  for (int64_t e = blockIdx.x; e < total; e += gridDim.x) {  // the same trip count for the whole block
    const int64_t c = e % d.cg, t = (e / d.cg) % d.s, r = (e / (int64_t(d.cg) * d.s)) % d.r,
                  o = e / (int64_t(d.cg) * d.s * d.r);
    const int64_t ci = (o / kg) * d.cg + c;
    T acc = T(0);
    for (int64_t m = tid; m < M; m += kThreads) {
      const int64_t q = m % d.wo, p = (m / d.wo) % d.ho, n = m / (int64_t(d.wo) * d.ho);
      const int64_t ih = p * d.sh - d.ph + r, iw = q * d.sw - d.pw + t;
      if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
      acc += dy[m * d.k + o] * x[((n * d.h + ih) * d.w + iw) * d.c + ci];
    }
    // No barrier before the store: the previous element's last barrier ended
    // every read but thread 0's of part[0], which only thread 0 writes.
    part[tid] = acc;
    __syncthreads();
    for (int h = kThreads / 2; h > 0; h >>= 1) {
      if (tid < h) part[tid] += part[tid + h];
      __syncthreads();
    }
    if (tid == 0) dw[e] = part[0];
  }
}

template <class T>
void direct_forward(const DnnConv& d, const T* x, const T* w, T beta, T* y, Stream s) {
  OFA_LAUNCH((direct_forward_kernel<T>), grid_for(int64_t(d.n) * d.ho * d.wo * d.k), kThreads, 0, s)
  (d, x, w, beta, y);
  OFA_CHECK_LAUNCH("direct_forward_kernel");
}
template <class T>
void direct_backward_data(const DnnConv& d, const T* dy, const T* w, T* dx, Stream s) {
  OFA_LAUNCH((direct_backward_data_kernel<T>), grid_for(int64_t(d.n) * d.h * d.w * d.c), kThreads, 0, s)
  (d, dy, w, dx);
  OFA_CHECK_LAUNCH("direct_backward_data_kernel");
}
template <class T>
void direct_backward_filter(const DnnConv& d, const T* x, const T* dy, T* dw, Stream s) {
  const int64_t total = int64_t(d.k) * d.r * d.s * d.cg;
  OFA_LAUNCH((direct_backward_filter_kernel<T>), grid_for(total, 1), kThreads, 0, s)(d, x, dy, dw);
  OFA_CHECK_LAUNCH("direct_backward_filter_kernel");
}

#if OFA_EMULATED

// cudnnConvolution{Forward, BackwardData, BackwardFilter} with
// CUDNN_CROSS_CORRELATION, dilation 1, NHWC tensors and filter: out =
// alpha * result + beta * out (beta == 0: out unread).
//   Forward:        y[n,p,q,o]   = sum_{r,s,c} x[n, p*sh-ph+r, q*sw-pw+s, grp*cg+c] w[o,r,s,c]
//   BackwardData:   dx[n,h,w,ci] = sum over the (y, tap) pairs that read it of dy[n,p,q,o] w[o,r,s,c]
//   BackwardFilter: dw[o,r,s,c]  = sum_{n,p,q} dy[n,p,q,o] x[n, p*sh-ph+r, q*sw-pw+s, grp*cg+c]
// (grp = o / (k / groups); taps outside the input read zero).
template <class T>
void dnn_reference(ConvOp op, const DnnConv& d, const T* x, const T* w, const T* y, T* out, T alpha, T beta) {
  const int64_t kg = d.k / d.groups;
  size_t n_out = 0;
  if (op == ConvOp::Forward) n_out = size_t(d.n) * d.ho * d.wo * d.k;
  if (op == ConvOp::BackwardData) n_out = size_t(d.n) * d.h * d.w * d.c;
  if (op == ConvOp::BackwardFilter) n_out = size_t(d.k) * d.r * d.s * d.cg;
  std::vector<T> acc(n_out, T(0));
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t p = 0; p < d.ho; ++p)
      for (int64_t q = 0; q < d.wo; ++q)
        for (int64_t o = 0; o < d.k; ++o) {
          const int64_t grp = o / kg, yi = ((n * d.ho + p) * d.wo + q) * d.k + o;
          for (int64_t r = 0; r < d.r; ++r) {
            const int64_t ih = p * d.sh - d.ph + r;
            if (ih < 0 || ih >= d.h) continue;
            for (int64_t s = 0; s < d.s; ++s) {
              const int64_t iw = q * d.sw - d.pw + s;
              if (iw < 0 || iw >= d.w) continue;
              for (int64_t c = 0; c < d.cg; ++c) {
                const int64_t xi = ((n * d.h + ih) * d.w + iw) * d.c + grp * d.cg + c;
                const int64_t wi = ((o * d.r + r) * d.s + s) * d.cg + c;
                if (op == ConvOp::Forward) acc[yi] += x[xi] * w[wi];
                if (op == ConvOp::BackwardData) acc[xi] += y[yi] * w[wi];
                if (op == ConvOp::BackwardFilter) acc[wi] += y[yi] * x[xi];
              }
            }
          }
        }
  for (size_t e = 0; e < n_out; ++e) out[e] = beta == T(0) ? alpha * acc[e] : alpha * acc[e] + beta * out[e];
}

// Each returns false where a GPU build would not call cuDNN (float64): the
// direct kernels run instead, here as there.
template <class T>
bool dnn_forward(const DnnConv& d, const T* x, const T* w, T beta, T* y, Scratch&, Stream) {
  if (!std::is_same<T, float>::value) return false;
  dnn_reference(ConvOp::Forward, d, x, w, static_cast<const T*>(nullptr), y, T(1), beta);
  return true;
}
template <class T>
bool dnn_backward_data(const DnnConv& d, const T* dy, const T* w, T* dx, Scratch&, Stream) {
  if (!std::is_same<T, float>::value) return false;
  dnn_reference(ConvOp::BackwardData, d, static_cast<const T*>(nullptr), w, dy, dx, T(1), T(0));
  return true;
}
template <class T>
bool dnn_backward_filter(const DnnConv& d, const T* x, const T* dy, T* dw, Scratch&, Stream) {
  if (!std::is_same<T, float>::value) return false;
  dnn_reference(ConvOp::BackwardFilter, d, x, static_cast<const T*>(nullptr), dy, dw, T(1), T(0));
  return true;
}

#else

template <class T>
constexpr cudnnDataType_t dnn_type() {
  return std::is_same<T, float>::value ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// The descriptors of one call (created and destroyed with it: cheap).
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs(const DnnConv& d, cudnnDataType_t dt) {
    OFA_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    OFA_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    OFA_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    OFA_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    OFA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, dt, d.n, d.c, d.h, d.w));
    OFA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, dt, d.n, d.k, d.ho, d.wo));
    OFA_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NHWC, d.k, d.cg, d.r, d.s));
    OFA_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, d.ph, d.pw, d.sh, d.sw, 1, 1, CUDNN_CROSS_CORRELATION, dt));
    OFA_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, d.groups));
    OFA_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
    int on, oc, oh, ow;
    OFA_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &on, &oc, &oh, &ow));
    OFA_CHECK(on == d.n && oc == d.k && oh == d.ho && ow == d.wo, "conv2d (CUDA): cuDNN's output ", on, "x", oc, "x",
              oh, "x", ow, " differs from the geometry's ", d.n, "x", d.k, "x", d.ho, "x", d.wo);
  }
  ~Descs() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

// The algorithm cache: (device, type, op, descriptor numbers) -> algorithm, or kDirect.
using AlgoKey = std::tuple<int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int>;
std::mutex g_algo_mu;
std::map<AlgoKey, int> g_algos;

AlgoKey algo_key(ConvOp op, cudnnDataType_t dt, const DnnConv& d) {
  int dev = 0;
  OFA_CUDA_CHECK(cudaGetDevice(&dev));
  return {dev,  static_cast<int>(dt), static_cast<int>(op), d.n, d.c, d.h, d.w, d.k, d.cg,
          d.r,  d.s, d.ph, d.pw, d.sh, d.sw, d.groups, 0};
}

constexpr int kDirect = -1;  // the cache's mark for "the direct kernels"

// The first of cuDNN's heuristic candidates that is deterministic and
// reported as FMA math, else the first deterministic one reported as default
// math; either runs with CUDNN_FMA_MATH set (no TF32), and a call that cuDNN
// then refuses falls back to the direct kernels, as does finding none.
template <class Perf>
int pick(const Perf* perf, int n) {
  for (cudnnMathType_t want : {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH})
    for (int i = 0; i < n; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC &&
          perf[i].mathType == want)
        return static_cast<int>(perf[i].algo);
  return kDirect;
}

// Marks a geometry for the direct kernels (once, with a line on stderr: it is slower).
void use_direct(const AlgoKey& key, const char* name, const DnnConv& d, const char* why) {
  std::lock_guard<std::mutex> lock(g_algo_mu);
  int& a = g_algos[key];
  if (a == kDirect) return;
  a = kDirect;
  std::fprintf(stderr,
               "%s: cuDNN %s for x %dx%dx%dx%d (NHWC), filter %dx%dx%dx%d, stride %dx%d, pad %dx%d, groups %d; "
               "the direct kernels run it (deterministic, slower)\n",
               name, why, d.n, d.h, d.w, d.c, d.k, d.r, d.s, d.cg, d.sh, d.sw, d.ph, d.pw, d.groups);
}

int algorithm(cudnnHandle_t h, ConvOp op, cudnnDataType_t dt, const DnnConv& d, const Descs& ds, const char* name) {
  const AlgoKey key = algo_key(op, dt, d);
  {
    std::lock_guard<std::mutex> lock(g_algo_mu);
    auto it = g_algos.find(key);
    if (it != g_algos.end()) return it->second;
  }
  int a;
  int n = 0;
  if (op == ConvOp::Forward) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    OFA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, ds.x, ds.w, ds.conv, ds.y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    a = pick(perf, n);
  } else if (op == ConvOp::BackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    OFA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, ds.w, ds.y, ds.conv, ds.x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    a = pick(perf, n);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    OFA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, ds.x, ds.y, ds.conv, ds.w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
    a = pick(perf, n);
  }
  if (a == kDirect) {
    use_direct(key, name, d, "offers no deterministic FMA-math algorithm");
    return kDirect;
  }
  std::lock_guard<std::mutex> lock(g_algo_mu);
  g_algos.emplace(key, a);
  return a;
}

// A workspace query or a call: true when done, false (the geometry marked
// for the direct kernels) when cuDNN refuses it as not supported.
bool dnn_ok(cudnnStatus_t st, ConvOp op, cudnnDataType_t dt, const DnnConv& d, const char* name, const char* call) {
  if (st == CUDNN_STATUS_SUCCESS) return true;
  if (!cudnn_refuses_as_not_supported(st))
    throw Error(str_cat(name, ": ", call, " failed: ", cudnnGetErrorString(st)));
  use_direct(algo_key(op, dt, d), name, d, str_cat("refused its algorithm (", cudnnGetErrorString(st), ")").c_str());
  return false;
}

// Each returns false where the direct kernels must run it: float64 always,
// float32 where cuDNN has no deterministic FMA-math algorithm or refuses one.
template <class T>
bool dnn_forward(const DnnConv& d, const T* x, const T* w, T beta, T* y, Scratch& scratch, Stream s) {
  if (!std::is_same<T, float>::value) return false;
  const char* name = "conv2d_forward (CUDA)";
  const ConvOp op = ConvOp::Forward;
  cudnnHandle_t h = backend_instance().dnn(s);
  Descs ds(d, dnn_type<T>());
  const int algo = algorithm(h, op, dnn_type<T>(), d, ds, name);
  if (algo == kDirect) return false;
  const auto a = static_cast<cudnnConvolutionFwdAlgo_t>(algo);
  size_t bytes = 0;
  if (!dnn_ok(cudnnGetConvolutionForwardWorkspaceSize(h, ds.x, ds.w, ds.conv, ds.y, a, &bytes), op, dnn_type<T>(), d,
              name, "cudnnGetConvolutionForwardWorkspaceSize"))
    return false;
  void* ws = bytes ? scratch.get(bytes) : nullptr;
  const T alpha = T(1);
  return dnn_ok(cudnnConvolutionForward(h, &alpha, ds.x, x, ds.w, w, ds.conv, a, ws, bytes, &beta, ds.y, y), op,
                dnn_type<T>(), d, name, "cudnnConvolutionForward");
}

template <class T>
bool dnn_backward_data(const DnnConv& d, const T* dy, const T* w, T* dx, Scratch& scratch, Stream s) {
  if (!std::is_same<T, float>::value) return false;
  const char* name = "conv2d_backward_input (CUDA)";
  const ConvOp op = ConvOp::BackwardData;
  cudnnHandle_t h = backend_instance().dnn(s);
  Descs ds(d, dnn_type<T>());
  const int algo = algorithm(h, op, dnn_type<T>(), d, ds, name);
  if (algo == kDirect) return false;
  const auto a = static_cast<cudnnConvolutionBwdDataAlgo_t>(algo);
  size_t bytes = 0;
  if (!dnn_ok(cudnnGetConvolutionBackwardDataWorkspaceSize(h, ds.w, ds.y, ds.conv, ds.x, a, &bytes), op,
              dnn_type<T>(), d, name, "cudnnGetConvolutionBackwardDataWorkspaceSize"))
    return false;
  void* ws = bytes ? scratch.get(bytes) : nullptr;
  const T alpha = T(1), beta = T(0);
  return dnn_ok(cudnnConvolutionBackwardData(h, &alpha, ds.w, w, ds.y, dy, ds.conv, a, ws, bytes, &beta, ds.x, dx),
                op, dnn_type<T>(), d, name, "cudnnConvolutionBackwardData");
}

template <class T>
bool dnn_backward_filter(const DnnConv& d, const T* x, const T* dy, T* dw, Scratch& scratch, Stream s) {
  if (!std::is_same<T, float>::value) return false;
  const char* name = "conv2d_backward_weight (CUDA)";
  const ConvOp op = ConvOp::BackwardFilter;
  cudnnHandle_t h = backend_instance().dnn(s);
  Descs ds(d, dnn_type<T>());
  const int algo = algorithm(h, op, dnn_type<T>(), d, ds, name);
  if (algo == kDirect) return false;
  const auto a = static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo);
  size_t bytes = 0;
  if (!dnn_ok(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, ds.x, ds.y, ds.conv, ds.w, a, &bytes), op,
              dnn_type<T>(), d, name, "cudnnGetConvolutionBackwardFilterWorkspaceSize"))
    return false;
  void* ws = bytes ? scratch.get(bytes) : nullptr;
  const T alpha = T(1), beta = T(0);
  return dnn_ok(
      cudnnConvolutionBackwardFilter(h, &alpha, ds.x, x, ds.y, dy, ds.conv, a, ws, bytes, &beta, ds.w, dw), op,
      dnn_type<T>(), d, name, "cudnnConvolutionBackwardFilter");
}

#endif

// ---------------------------------------------------------------- the typed entry points

template <class T>
void forward(Backend& be, const Conv2dGeom& g, const T* x, const T* w, int64_t w_rs, int64_t w_cs, const T* bias,
             int64_t bias_stride, T* y, Scratch& scratch, Stream s) {
  const char* op = "conv2d_forward (CUDA)";
  check_geom(g, op);
  const int64_t P = g.N * g.Ho * g.Wo, og = g.cout_g(), cg = g.cin_g();
  const DType dt = std::is_same<T, float>::value ? DType::F32 : DType::F64;
  if (P == 0 || g.Cout == 0) return;
  if (bias) be.fill_rows(dt, y, P, g.Cout, g.Cout, bias, bias_stride, s);
  const T beta = bias ? T(1) : T(0);
  if (g.k_g() == 0) {  // no input channels: the bias alone, or zeros
    if (!bias) be.memset_async(y, 0, static_cast<size_t>(P * g.Cout) * sizeof(T), s);
    return;
  }
  if (g.pointwise()) {
    const MatArg wg = pointwise_weight(be, g, w, w_rs, w_cs, scratch, s);
    // Per group: y[:, grp og..] = x[:, grp cg..] W_g^T.
    be.gemm(dt, {x, P, cg, g.Cin, 1, cg}, {wg.p, cg, og, wg.cs, wg.rs, wg.batch_stride}, 1.0, double(beta), y,
            g.Cout, og, g.groups, s);
    return;
  }
  const DnnConv d = dnn_conv(g, op);
  const T* wk = dense_krsc(g, w_rs, w_cs) ? w : repack_weight(g, w, w_rs, w_cs, true, scratch, s);
  if (!dnn_forward(d, x, wk, beta, y, scratch, s)) direct_forward(d, x, wk, beta, y, s);
}

template <class T>
void backward_input(Backend& be, const Conv2dGeom& g, const T* dy, const T* w, int64_t w_rs, int64_t w_cs, T* dx,
                    Scratch& scratch, Stream s) {
  const char* op = "conv2d_backward_input (CUDA)";
  check_geom(g, op);
  const int64_t og = g.cout_g(), cg = g.cin_g(), P = g.N * g.Ho * g.Wo;
  const DType dt = std::is_same<T, float>::value ? DType::F32 : DType::F64;
  if (g.N * g.H * g.W * g.Cin == 0) return;
  if (g.Cout == 0 || P == 0) {  // nothing flows back (cuDNN refuses an empty output as BAD_PARAM)
    be.memset_async(dx, 0, static_cast<size_t>(g.N * g.H * g.W * g.Cin) * sizeof(T), s);
    return;
  }
  if (g.pointwise()) {
    const MatArg wg = pointwise_weight(be, g, w, w_rs, w_cs, scratch, s);
    // Per group: dx[:, grp cg..] = dy[:, grp og..] W_g.
    be.gemm(dt, {dy, P, og, g.Cout, 1, og}, wg, 1.0, 0.0, dx, g.Cin, cg, g.groups, s);
    return;
  }
  const DnnConv d = dnn_conv(g, op);
  const T* wk = dense_krsc(g, w_rs, w_cs) ? w : repack_weight(g, w, w_rs, w_cs, true, scratch, s);
  if (!dnn_backward_data(d, dy, wk, dx, scratch, s)) direct_backward_data(d, dy, wk, dx, s);
}

template <class T>
void backward_weight(Backend& be, const Conv2dGeom& g, const T* x, const T* dy, T* dw, Scratch& scratch, Stream s) {
  const char* op = "conv2d_backward_weight (CUDA)";
  check_geom(g, op);
  const int64_t og = g.cout_g(), cg = g.cin_g(), K = g.k_g(), P = g.N * g.Ho * g.Wo;
  const DType dt = std::is_same<T, float>::value ? DType::F32 : DType::F64;
  if (g.Cout * K == 0) return;
  if (P == 0) {  // an empty batch: a zero gradient
    be.memset_async(dw, 0, static_cast<size_t>(g.Cout * K) * sizeof(T), s);
    return;
  }
  if (g.pointwise()) {
    // Per group: dw[grp og.., :] = dy[:, grp og..]^T x[:, grp cg..].
    be.gemm(dt, {dy, og, P, 1, g.Cout, og}, {x, P, cg, g.Cin, 1, cg}, 1.0, 0.0, dw, K, og * K, g.groups, s);
    return;
  }
  const DnnConv d = dnn_conv(g, op);
  const bool direct = dense_krsc(g, K, 1);
  T* out = direct ? dw : static_cast<T*>(scratch.get(static_cast<size_t>(g.Cout * K) * sizeof(T)));
  if (!dnn_backward_filter(d, x, dy, out, scratch, s)) direct_backward_filter(d, x, dy, out, s);
  if (!direct) {
    OFA_LAUNCH((krsc_to_dense_kernel<T>), grid_for(g.Cout * K), kThreads, 0, s)(out, g.Cout, K, g.kh * g.kw, cg, dw);
    OFA_CHECK_LAUNCH("krsc_to_dense_kernel");
  }
}

}  // namespace

void Backend::conv2d_forward(DType t, const Conv2dGeom& g, const void* x, const void* w, int64_t w_rs, int64_t w_cs,
                             const void* bias, int64_t bias_stride, void* y, Scratch& scratch, Stream s) {
  OFA_CUDA_FLOATING(t, "conv2d_forward (CUDA)", [&] {
    forward(*this, g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w), w_rs, w_cs,
            static_cast<const scalar_t*>(bias), bias_stride, static_cast<scalar_t*>(y), scratch, s);
  });
}

void Backend::conv2d_backward_input(DType t, const Conv2dGeom& g, const void* dy, const void* w, int64_t w_rs,
                                    int64_t w_cs, void* dx, Scratch& scratch, Stream s) {
  OFA_CUDA_FLOATING(t, "conv2d_backward_input (CUDA)", [&] {
    backward_input(*this, g, static_cast<const scalar_t*>(dy), static_cast<const scalar_t*>(w), w_rs, w_cs,
                   static_cast<scalar_t*>(dx), scratch, s);
  });
}

void Backend::conv2d_backward_weight(DType t, const Conv2dGeom& g, const void* x, const void* dy, void* dw,
                                     Scratch& scratch, Stream s) {
  OFA_CUDA_FLOATING(t, "conv2d_backward_weight (CUDA)", [&] {
    backward_weight(*this, g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(dy),
                    static_cast<scalar_t*>(dw), scratch, s);
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
