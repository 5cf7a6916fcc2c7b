// The implementation of kernels::CudaBackend: declared once here, its
// methods defined across kernels/cuda/*.cu (each op family in its file,
// the runtime in backend.cu). Every .cu file is compiled twice: by nvcc into
// ofa::kernels::cuda (the GPU) and by the host compiler against the CPU
// emulation into ofa::kernels::cuda_emu (see cuda_compat.h). Include only
// from kernels/cuda/*.cu.
#pragma once
#include "kernels/cuda/cuda_compat.h"  // first: it picks the namespace

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "engine/dispatch.h"
#include "kernels/cuda/backend.h"

#if !OFA_EMULATED
#include <cublas_v2.h>
#include <cudnn.h>

#include "engine/cuda_check.h"

#define OFA_CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                          \
    cublasStatus_t ofa_st_ = (call);                                                                            \
    if (ofa_st_ != CUBLAS_STATUS_SUCCESS)                                                                       \
      throw ::ofa::Error(::ofa::str_cat(__FILE__, ":", __LINE__, ": ", #call, " failed: ",                     \
                                        cublasGetStatusName(ofa_st_), " (", cublasGetStatusString(ofa_st_), ")")); \
  } while (0)
#define OFA_CUDNN_CHECK(call)                                                                                   \
  do {                                                                                                          \
    cudnnStatus_t ofa_st_ = (call);                                                                             \
    if (ofa_st_ != CUDNN_STATUS_SUCCESS)                                                                        \
      throw ::ofa::Error(::ofa::str_cat(__FILE__, ":", __LINE__, ": ", #call, " failed: ",                     \
                                        cudnnGetErrorString(ofa_st_)));                                         \
  } while (0)
#endif

namespace ofa::kernels::OFA_CUDA_NS {

// ---------------------------------------------------------------- launch shapes

constexpr int kThreads = 256;  // threads per block of the 1-D kernels
constexpr int64_t kDefaultMaxBlocks = 4096;
int64_t max_blocks();  // kDefaultMaxBlocks unless a test shrank it

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for n elements at `threads` per block: at least 1, at most
// max_blocks(); the kernels' grid-stride loops cover the rest.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(ceil_div(n, threads), max_blocks())));
}

// The grid-stride loop of a 1-D launch, 64-bit throughout.
#define OFA_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Element-type dispatch of a kernel family (float32 / float64).
#define OFA_CUDA_FLOATING(DT, NAME, ...) OFA_DISPATCH_FLOATING(DT, NAME, __VA_ARGS__)

// ---------------------------------------------------------------- the backend

class Backend final : public CudaBackend {
 public:
  Backend();
  ~Backend() override;
  bool emulated() const override { return OFA_EMULATED != 0; }
  std::string name() const override;

  int device_count() override;
  DeviceProps properties(int device) override;
  void set_device(int device) override;
  int current_device() override;
  void* malloc(size_t bytes) override;
  void free(void* p) override;
  void mem_info(size_t* free_bytes, size_t* total_bytes) override;
  void* malloc_host(size_t bytes) override;
  void free_host(void* p) override;
  Stream stream_create() override;
  void stream_destroy(Stream s) override;
  void stream_synchronize(Stream s) override;
  void device_synchronize() override;
  Event event_create(bool timing) override;
  void event_destroy(Event e) override;
  void event_record(Event e, Stream s) override;
  bool event_query(Event e) override;
  void event_synchronize(Event e) override;
  void stream_wait_event(Stream s, Event e) override;
  float event_elapsed_ms(Event start, Event end) override;
  void memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s) override;
  void memset_async(void* dst, int byte, size_t bytes, Stream s) override;
  void set_max_blocks(int64_t max_blocks) override;

  void fill(DType t, void* base, const StridedArgs<1>& a, double value, Stream s) override;
  void copy(DType dst_t, void* dst, DType src_t, const void* src, const StridedArgs<2>& a, Stream s) override;
  void axpy(DType t, void* dst, const void* src, double alpha, const StridedArgs<2>& a, Stream s) override;
  void scale(DType t, void* base, double v, const StridedArgs<1>& a, Stream s) override;
  void binary(BinOp op, DType t, void* out, const void* a, const void* b, const StridedArgs<3>& args,
              Stream s) override;
  void scalar_op(ScalarOp op, DType t, const void* x, double v, void* y, int64_t n, Stream s) override;
  void activation_forward(Act act, DType t, const void* x, void* y, int64_t n, Stream s) override;
  void activation_backward(Act act, DType t, const void* x, const void* gy, void* gx, int64_t n, Stream s) override;
  void random_fill(DType t, void* base, const StridedArgs<2>& a, uint64_t seed, uint64_t counter, RandomDist dist,
                   double p0, double p1, Stream s) override;

  void reduce_sum(DType t, const void* in, const StridedArgs<2>& keep, const StridedArgs<1>& red, void* out,
                  double scale, Scratch& scratch, Stream s) override;

  void gemm(DType t, const MatArg& A, const MatArg& B, double alpha, double beta, void* C, int64_t ldc,
            int64_t c_batch_stride, int64_t batch, Stream s) override;

  void sum_rows(DType t, const void* a, int64_t rows, int64_t cols, int64_t lda, void* out, int64_t out_stride,
                Scratch& scratch, Stream s) override;
  void fill_rows(DType t, void* y, int64_t rows, int64_t cols, int64_t ldy, const void* v, int64_t v_stride,
                 Stream s) override;

  void conv2d_forward(DType t, const Conv2dGeom& g, const void* x, const void* w, int64_t w_rs, int64_t w_cs,
                      const void* bias, int64_t bias_stride, void* y, Scratch& scratch, Stream s) override;
  void conv2d_backward_input(DType t, const Conv2dGeom& g, const void* dy, const void* w, int64_t w_rs, int64_t w_cs,
                             void* dx, Scratch& scratch, Stream s) override;
  void conv2d_backward_weight(DType t, const Conv2dGeom& g, const void* x, const void* dy, void* dw, Scratch& scratch,
                              Stream s) override;

  void depthwise_forward(DType t, const DwGeom& g, const void* x, const void* w, int64_t ws_c, int64_t ws_i,
                         int64_t ws_j, void* y, Stream s) override;
  void depthwise_backward_input(DType t, const DwGeom& g, const void* dy, const void* w, int64_t ws_c, int64_t ws_i,
                                int64_t ws_j, void* dx, Stream s) override;
  void depthwise_backward_weight(DType t, const DwGeom& g, const void* x, const void* dy, void* dw, Scratch& scratch,
                                 Stream s) override;

  void bn_batch_stats(DType t, const void* x, int64_t M, int64_t C, double* mean, double* var, Scratch& scratch,
                      Stream s) override;
  void bn_finish_stats(DType t, const double* mean, const double* var, int64_t C, int64_t M, double eps,
                       void* running_mean, int64_t rm_stride, void* running_var, int64_t rv_stride, double momentum,
                       double* invstd, Stream s) override;
  void bn_eval_stats(DType t, const void* running_mean, int64_t rm_stride, const void* running_var, int64_t rv_stride,
                     int64_t C, double eps, double* mean, double* invstd, Stream s) override;
  void bn_forward(DType t, const void* x, int64_t M, int64_t C, const double* mean, const double* invstd, const void* w,
                  int64_t w_stride, const void* b, int64_t b_stride, void* y, Act act, Stream s) override;
  void bn_backward(DType t, const void* x, const void* gy, int64_t M, int64_t C, const double* mean,
                   const double* invstd, const void* w, int64_t w_stride, bool training, void* gx, void* gw, void* gb,
                   Act act, const void* b, int64_t b_stride, Scratch& scratch, Stream s) override;

  void global_avg_pool_forward(DType t, const void* x, int64_t N, int64_t HW, int64_t C, void* out, Stream s) override;
  void global_avg_pool_backward(DType t, const void* gy, int64_t N, int64_t HW, int64_t C, void* gx, Stream s) override;

  void softmax_forward(DType t, const void* x, void* y, int64_t outer, int64_t K, int64_t inner, bool log,
                       Stream s) override;
  void softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t outer, int64_t K, int64_t inner,
                        bool log, Stream s) override;
  void cross_entropy_forward(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, double ls,
                             double* lse, void* loss, DeviceError* err, Scratch& scratch, Stream s) override;
  void cross_entropy_backward(DType t, const void* x, const int64_t* target, const double* lse, int64_t N, int64_t K,
                              double ls, const void* gloss, double scale, void* gx, Stream s) override;
  void cross_entropy_soft_forward(DType t, const void* x, const void* soft, int64_t N, int64_t K, double* lse,
                                  void* loss, Scratch& scratch, Stream s) override;
  void cross_entropy_soft_backward(DType t, const void* x, const void* soft, const double* lse, int64_t N, int64_t K,
                                   const void* gloss, double scale, void* gx, void* gsoft, Stream s) override;
  void mse_forward(DType t, const void* a, const void* b, int64_t n, void* loss, Scratch& scratch, Stream s) override;
  void mse_backward(DType t, const void* a, const void* b, int64_t n, const void* gloss, double scale, void* ga,
                    void* gb, Stream s) override;

  void index_select_forward(DType t, const void* x, int64_t outer, int64_t D, int64_t inner, const int64_t* index,
                            int64_t K, void* out, DeviceError* err, Stream s) override;
  void index_select_backward(DType t, const void* gy, int64_t outer, int64_t D, int64_t inner, const int64_t* index,
                             int64_t K, void* gx, Stream s) override;
  void gather_forward(DType t, const void* x, const int64_t* index, const GatherArgs& a, void* out, DeviceError* err,
                      Stream s) override;
  void gather_backward(DType t, const void* gy, const int64_t* index, const GatherArgs& a, void* gx,
                       Stream s) override;
  void argsort(DType t, const void* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out,
               Stream s) override;
  void topk_rank(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, int64_t* rank, DeviceError* err,
                 Stream s) override;

  void sgd_step(DType t, const SgdCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch,
                Stream s) override;
  void adam_step(DType t, const AdamCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch,
                 Stream s) override;

#if !OFA_EMULATED
  // One cuBLAS and one cuDNN handle per device, bound to the stream of each call.
  cublasHandle_t blas(Stream s);
  cudnnHandle_t dnn(Stream s);
#endif

 private:
#if !OFA_EMULATED
  static constexpr int kMaxDevices = 64;
  std::mutex mu_;
  cublasHandle_t blas_[kMaxDevices] = {};
  cudnnHandle_t dnn_[kMaxDevices] = {};
#endif
};

Backend& backend_instance();

// Device bytes of scratch the depthwise weight gradient takes (depthwise_conv.cu).
size_t depthwise_backward_weight_workspace_bytes(const DwGeom& g);

}  // namespace ofa::kernels::OFA_CUDA_NS
