// Scaffold while this family's kernels are written: every method throws
// "not written yet" (nothing calls them yet). Deleted when the family's own
// .cu file defines them.
#include "kernels/cuda/backend_impl.h"

namespace ofa::kernels::OFA_CUDA_NS {

void Backend::bn_batch_stats(DType t, const void* x, int64_t M, int64_t C, double* mean, double* var, Scratch& scratch, Stream s) { throw Error("bn_batch_stats (CUDA): not written yet"); }
void Backend::bn_finish_stats(DType t, const double* mean, const double* var, int64_t C, int64_t M, double eps, void* running_mean, int64_t rm_stride, void* running_var, int64_t rv_stride, double momentum, double* invstd, Stream s) { throw Error("bn_finish_stats (CUDA): not written yet"); }
void Backend::bn_eval_stats(DType t, const void* running_mean, int64_t rm_stride, const void* running_var, int64_t rv_stride, int64_t C, double eps, double* mean, double* invstd, Stream s) { throw Error("bn_eval_stats (CUDA): not written yet"); }
void Backend::bn_forward(DType t, const void* x, int64_t M, int64_t C, const double* mean, const double* invstd, const void* w, int64_t w_stride, const void* b, int64_t b_stride, void* y, Stream s) { throw Error("bn_forward (CUDA): not written yet"); }
void Backend::bn_backward(DType t, const void* x, const void* gy, int64_t M, int64_t C, const double* mean, const double* invstd, const void* w, int64_t w_stride, bool training, void* gx, void* gw, void* gb, Scratch& scratch, Stream s) { throw Error("bn_backward (CUDA): not written yet"); }
void Backend::global_avg_pool_forward(DType t, const void* x, int64_t N, int64_t HW, int64_t C, void* out, Stream s) { throw Error("global_avg_pool_forward (CUDA): not written yet"); }
void Backend::global_avg_pool_backward(DType t, const void* gy, int64_t N, int64_t HW, int64_t C, void* gx, Stream s) { throw Error("global_avg_pool_backward (CUDA): not written yet"); }

}  // namespace ofa::kernels::OFA_CUDA_NS
