// The CUDA backend as the engine sees it: the runtime (device memory, pinned
// host memory, streams, events, copies) and every CUDA kernel, behind one
// interface with two implementations built from the same sources
// (kernels/cuda/*.cu, see backend_impl.h):
//   - compiled by nvcc: the GPU (gpu_backend(); nullptr in builds without nvcc);
//   - compiled by the host compiler against kernels/cuda/emu: the very same
//     kernel code run on the CPU (emulated_backend()), device memory being
//     host memory, streams synchronous, and cuBLAS / cuDNN replaced by
//     reference loops of their documented semantics (so that the argument
//     mapping onto them is what gets tested; the libraries themselves run
//     only on a GPU).
// Plain C++: no CUDA header. Pointers are device pointers unless named host;
// element types are erased (DType + void*) so that one virtual call serves
// float32 and float64. Every size is 64-bit. Every call is checked: errors
// throw ofa::Error with file, line and the library's message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/common.h"
#include "kernels/common/activation_math.h"
#include "kernels/common/optim_math.h"
#include "kernels/cpu/binary.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/depthwise_conv.h"
#include "kernels/cuda/strided.h"

struct CUstream_st;
struct CUevent_st;

namespace ofa::kernels {

using Stream = CUstream_st*;
using Event = CUevent_st*;
using cpu::BinOp;
using cpu::Conv2dGeom;
using cpu::DwGeom;
using cpu::ScalarOp;

enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
enum class RandomDist { Uniform, Normal, Bernoulli };

struct DeviceProps {
  std::string name;
  int major = 0, minor = 0, sm_count = 0;
  size_t total_memory = 0;
};

// Scratch device memory for one call: valid for the work that call enqueues
// on its stream (the engine's allocator reuses memory in stream order).
class Scratch {
 public:
  virtual ~Scratch() = default;
  virtual void* get(size_t bytes) = 0;
};

// A device-side record of the first invalid index a kernel met (labels,
// index_select, gather): kernels set it instead of trapping, the engine reads
// it at the next synchronisation and throws a message naming the op.
struct DeviceError {
  int code;  // 0: none; else an ErrorCode
  int pad;
  int64_t value, position, limit;
};
enum ErrorCode : int { kErrNone = 0, kErrTarget = 1, kErrIndexSelect = 2, kErrGather = 3, kErrTopkTarget = 4 };

// One tensor of a multi-tensor optimizer step.
struct OptimTensor {
  void* p;
  const void* g;
  void* buf0;  // SGD momentum buffer / Adam exp_avg (may be null for plain SGD)
  void* buf1;  // Adam exp_avg_sq
  int64_t n;
  bool first;  // SGD: the momentum buffer is created by this step (buf = d)
};

class CudaBackend {
 public:
  virtual ~CudaBackend() = default;
  virtual bool emulated() const = 0;
  virtual std::string name() const = 0;

  // ---------------------------------------------------------------- runtime
  virtual int device_count() = 0;
  virtual DeviceProps properties(int device) = 0;
  virtual void set_device(int device) = 0;  // of the calling thread
  virtual int current_device() = 0;         // of the calling thread
  // Raw device memory of the current device; nullptr when it is exhausted
  // (the caching allocator then frees its cache and tries again).
  virtual void* malloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void mem_info(size_t* free_bytes, size_t* total_bytes) = 0;
  // Page-locked host memory (asynchronous copies); nullptr when refused.
  virtual void* malloc_host(size_t bytes) = 0;
  virtual void free_host(void* p) = 0;
  virtual Stream stream_create() = 0;  // non-blocking, on the current device
  virtual void stream_destroy(Stream s) = 0;
  virtual void stream_synchronize(Stream s) = 0;
  virtual void device_synchronize() = 0;
  virtual Event event_create(bool timing) = 0;
  virtual void event_destroy(Event e) = 0;
  virtual void event_record(Event e, Stream s) = 0;
  virtual bool event_query(Event e) = 0;  // true once the recorded work is done
  virtual void event_synchronize(Event e) = 0;
  virtual void stream_wait_event(Stream s, Event e) = 0;
  virtual float event_elapsed_ms(Event start, Event end) = 0;
  virtual void memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s) = 0;
  virtual void memset_async(void* dst, int byte, size_t bytes, Stream s) = 0;
  // Tests shrink the grid of every hand-written kernel so that each
  // grid-stride loop goes round several times (0 restores the default).
  virtual void set_max_blocks(int64_t max_blocks) = 0;

  // ---------------------------------------------------------------- elementwise (elementwise.cu)
  virtual void fill(DType t, void* base, const StridedArgs<1>& a, double value, Stream s) = 0;
  // dst = (dst type) src, any strides, any of float32 / float64 / int64 each way.
  virtual void copy(DType dst_t, void* dst, DType src_t, const void* src, const StridedArgs<2>& a, Stream s) = 0;
  virtual void axpy(DType t, void* dst, const void* src, double alpha, const StridedArgs<2>& a, Stream s) = 0;
  virtual void scale(DType t, void* base, double v, const StridedArgs<1>& a, Stream s) = 0;
  // out = a op b (operands 0, 1, 2 of the args).
  virtual void binary(BinOp op, DType t, void* out, const void* a, const void* b, const StridedArgs<3>& args,
                      Stream s) = 0;
  virtual void scalar_op(ScalarOp op, DType t, const void* x, double v, void* y, int64_t n, Stream s) = 0;
  virtual void activation_forward(Act act, DType t, const void* x, void* y, int64_t n, Stream s) = 0;
  virtual void activation_backward(Act act, DType t, const void* x, const void* gy, void* gx, int64_t n,
                                   Stream s) = 0;
  // Element at operand-0 offset o, row-major position q (operand 1's
  // "offset") gets draw(seed, counter + q): the CPU's fill_with, on the device.
  virtual void random_fill(DType t, void* base, const StridedArgs<2>& a, uint64_t seed, uint64_t counter,
                           RandomDist dist, double p0, double p1, Stream s) = 0;

  // ---------------------------------------------------------------- reductions (reduce.cu)
  // out[keep index] = scale * sum over the reduced dims, summed in double in
  // a fixed order (deterministic). `keep` and `red` describe the input's
  // kept and reduced dims (operand 0: input strides; keep operand 1: the
  // output's strides).
  virtual void reduce_sum(DType t, const void* in, const StridedArgs<2>& keep, const StridedArgs<1>& red, void* out,
                          double scale, Scratch& scratch, Stream s) = 0;

  // ---------------------------------------------------------------- GEMM (gemm.cu: cuBLAS)
  // C[b] = alpha * A[b] B[b] + beta * C[b] for b < batch: A [M, K] with row
  // stride a_rs and column stride a_cs (one of them 1), B [K, N] likewise,
  // C row-major [M, N] with leading dimension ldc; batch strides in elements.
  struct MatArg {
    const void* p;
    int64_t rows, cols, rs, cs, batch_stride;
  };
  virtual void gemm(DType t, const MatArg& A, const MatArg& B, double alpha, double beta, void* C, int64_t ldc,
                    int64_t c_batch_stride, int64_t batch, Stream s) = 0;

  // out[j * out_stride] = sum over rows i of a[i * lda + j] (a [rows, cols]):
  // the bias gradient of a linear layer; fixed order (deterministic).
  virtual void sum_rows(DType t, const void* a, int64_t rows, int64_t cols, int64_t lda, void* out,
                        int64_t out_stride, Scratch& scratch, Stream s) = 0;
  // y[i * ldy + j] = v[j * v_stride]: the bias of a linear layer before the GEMM adds to it.
  virtual void fill_rows(DType t, void* y, int64_t rows, int64_t cols, int64_t ldy, const void* v, int64_t v_stride,
                         Stream s) = 0;

  // ---------------------------------------------------------------- convolution (conv2d.cu: cuBLAS / cuDNN)
  // As kernels/cpu/conv2d.h: NHWC x [N, H, W, Cin] and y [N, Ho, Wo, Cout]
  // dense; the weight [Cout, Cin / groups, kh, kw] read as the matrix
  // [Cout, K_g] with element (o, q) at w[o * w_rs + q * w_cs] (an active
  // slice of a larger weight, not copied for the pointwise convolutions,
  // which are one GEMM over the pixels); bias [Cout] at bias_stride or null.
  // The others go to cuDNN (NHWC, algorithms chosen once per geometry).
  virtual void conv2d_forward(DType t, const Conv2dGeom& g, const void* x, const void* w, int64_t w_rs, int64_t w_cs,
                              const void* bias, int64_t bias_stride, void* y, Scratch& scratch, Stream s) = 0;
  // dx fully written.
  virtual void conv2d_backward_input(DType t, const Conv2dGeom& g, const void* dy, const void* w, int64_t w_rs,
                                     int64_t w_cs, void* dx, Scratch& scratch, Stream s) = 0;
  // dw dense [Cout, K_g], fully written.
  virtual void conv2d_backward_weight(DType t, const Conv2dGeom& g, const void* x, const void* dy, void* dw,
                                      Scratch& scratch, Stream s) = 0;

  // ---------------------------------------------------------------- depthwise (depthwise_conv.cu)
  // As kernels/cpu/depthwise_conv.h: NHWC, the weight read through strides.
  virtual void depthwise_forward(DType t, const DwGeom& g, const void* x, const void* w, int64_t ws_c, int64_t ws_i,
                                 int64_t ws_j, void* y, Stream s) = 0;
  virtual void depthwise_backward_input(DType t, const DwGeom& g, const void* dy, const void* w, int64_t ws_c,
                                        int64_t ws_i, int64_t ws_j, void* dx, Stream s) = 0;
  virtual void depthwise_backward_weight(DType t, const DwGeom& g, const void* x, const void* dy, void* dw,
                                         Scratch& scratch, Stream s) = 0;

  // ---------------------------------------------------------------- batch norm (batch_norm.cu)
  // x is an [M, C] row-major block (NHWC activations). mean, var, invstd are
  // float64 [C] device vectors.
  virtual void bn_batch_stats(DType t, const void* x, int64_t M, int64_t C, double* mean, double* var,
                              Scratch& scratch, Stream s) = 0;
  // invstd = 1 / sqrt(var + eps); with running stats, updates them in place
  // (strided: they may be slices) with the unbiased variance, as PyTorch.
  virtual void bn_finish_stats(DType t, const double* mean, const double* var, int64_t C, int64_t M, double eps,
                               void* running_mean, int64_t rm_stride, void* running_var, int64_t rv_stride,
                               double momentum, double* invstd, Stream s) = 0;
  // Evaluation: mean, invstd from the running statistics.
  virtual void bn_eval_stats(DType t, const void* running_mean, int64_t rm_stride, const void* running_var,
                             int64_t rv_stride, int64_t C, double eps, double* mean, double* invstd, Stream s) = 0;
  virtual void bn_forward(DType t, const void* x, int64_t M, int64_t C, const double* mean, const double* invstd,
                          const void* w, int64_t w_stride, const void* b, int64_t b_stride, void* y, Act act,
                          Stream s) = 0;
  // gx, gw, gb may each be null (not needed). act: the activation fused into
  // the forward (gy is then its output's gradient); b, b_stride the forward's
  // bias (read only when act is not Identity).
  virtual void bn_backward(DType t, const void* x, const void* gy, int64_t M, int64_t C, const double* mean,
                           const double* invstd, const void* w, int64_t w_stride, bool training, void* gx, void* gw,
                           void* gb, Act act, const void* b, int64_t b_stride, Scratch& scratch, Stream s) = 0;

  // ---------------------------------------------------------------- pooling (pool.cu)
  virtual void global_avg_pool_forward(DType t, const void* x, int64_t N, int64_t HW, int64_t C, void* out,
                                       Stream s) = 0;
  virtual void global_avg_pool_backward(DType t, const void* gy, int64_t N, int64_t HW, int64_t C, void* gx,
                                        Stream s) = 0;

  // ---------------------------------------------------------------- softmax and losses (softmax.cu)
  virtual void softmax_forward(DType t, const void* x, void* y, int64_t outer, int64_t K, int64_t inner, bool log,
                               Stream s) = 0;
  virtual void softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t outer, int64_t K,
                                int64_t inner, bool log, Stream s) = 0;
  // Mean over the batch into the device scalar `loss` (type t); lse [N]
  // float64. Labels outside [0, K) are recorded in `err` (kErrTarget).
  virtual void cross_entropy_forward(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, double ls,
                                     double* lse, void* loss, DeviceError* err, Scratch& scratch, Stream s) = 0;
  // gx = (*gloss) * scale * d loss / d x: the loss gradient stays on the device.
  virtual void cross_entropy_backward(DType t, const void* x, const int64_t* target, const double* lse, int64_t N,
                                      int64_t K, double ls, const void* gloss, double scale, void* gx, Stream s) = 0;
  virtual void cross_entropy_soft_forward(DType t, const void* x, const void* soft, int64_t N, int64_t K, double* lse,
                                          void* loss, Scratch& scratch, Stream s) = 0;
  virtual void cross_entropy_soft_backward(DType t, const void* x, const void* soft, const double* lse, int64_t N,
                                           int64_t K, const void* gloss, double scale, void* gx, void* gsoft,
                                           Stream s) = 0;
  virtual void mse_forward(DType t, const void* a, const void* b, int64_t n, void* loss, Scratch& scratch,
                           Stream s) = 0;
  virtual void mse_backward(DType t, const void* a, const void* b, int64_t n, const void* gloss, double scale,
                            void* ga, void* gb, Stream s) = 0;

  // ---------------------------------------------------------------- indexing and sorting (index.cu)
  virtual void index_select_forward(DType t, const void* x, int64_t outer, int64_t D, int64_t inner,
                                    const int64_t* index, int64_t K, void* out, DeviceError* err, Stream s) = 0;
  // gx fully written (gather form, deterministic: no atomics).
  virtual void index_select_backward(DType t, const void* gy, int64_t outer, int64_t D, int64_t inner,
                                     const int64_t* index, int64_t K, void* gx, Stream s) = 0;
  // out (contiguous, index's shape) = x[..., index, ...] along dim; x strided.
  struct GatherArgs {
    int nd, dim;
    int64_t shape[kMaxDims];      // the index's (and output's) shape
    int64_t x_strides[kMaxDims];  // the input's strides
    int64_t x_dim_size;           // the input's size along dim
    int64_t x_shape[kMaxDims];    // the input's (gx's) shape: gather_backward writes all of gx
  };
  virtual void gather_forward(DType t, const void* x, const int64_t* index, const GatherArgs& a, void* out,
                              DeviceError* err, Stream s) = 0;
  // gx contiguous of the input's shape (x_strides are gx's), fully written.
  virtual void gather_backward(DType t, const void* gy, const int64_t* index, const GatherArgs& a, void* gx,
                               Stream s) = 0;
  // Stable; NaN is the largest value (PyTorch's order).
  virtual void argsort(DType t, const void* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out,
                       Stream s) = 0;
  // rank[n] = number of classes ranked above the target (ties: lower index
  // first), as the CPU's topk_correct; int64 [N].
  virtual void topk_rank(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, int64_t* rank,
                         DeviceError* err, Stream s) = 0;

  // ---------------------------------------------------------------- optimizers (optim.cu)
  // One fused launch per chunk of tensors (multi-tensor apply).
  virtual void sgd_step(DType t, const SgdCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch,
                        Stream s) = 0;
  virtual void adam_step(DType t, const AdamCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch,
                         Stream s) = 0;
};

// nullptr when the build has no nvcc-compiled backend.
CudaBackend* gpu_backend();
// Always present: the kernels on the CPU emulation.
CudaBackend* emulated_backend();

}  // namespace ofa::kernels
