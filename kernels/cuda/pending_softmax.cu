// Scaffold while this family's kernels are written: every method throws
// "not written yet" (nothing calls them yet). Deleted when the family's own
// .cu file defines them.
#include "kernels/cuda/backend_impl.h"

namespace ofa::kernels::OFA_CUDA_NS {

void Backend::softmax_forward(DType t, const void* x, void* y, int64_t outer, int64_t K, int64_t inner, bool log, Stream s) { throw Error("softmax_forward (CUDA): not written yet"); }
void Backend::softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t outer, int64_t K, int64_t inner, bool log, Stream s) { throw Error("softmax_backward (CUDA): not written yet"); }
void Backend::cross_entropy_forward(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, double ls, double* lse, void* loss, DeviceError* err, Scratch& scratch, Stream s) { throw Error("cross_entropy_forward (CUDA): not written yet"); }
void Backend::cross_entropy_backward(DType t, const void* x, const int64_t* target, const double* lse, int64_t N, int64_t K, double ls, const void* gloss, double scale, void* gx, Stream s) { throw Error("cross_entropy_backward (CUDA): not written yet"); }
void Backend::cross_entropy_soft_forward(DType t, const void* x, const void* soft, int64_t N, int64_t K, double* lse, void* loss, Scratch& scratch, Stream s) { throw Error("cross_entropy_soft_forward (CUDA): not written yet"); }
void Backend::cross_entropy_soft_backward(DType t, const void* x, const void* soft, const double* lse, int64_t N, int64_t K, const void* gloss, double scale, void* gx, void* gsoft, Stream s) { throw Error("cross_entropy_soft_backward (CUDA): not written yet"); }
void Backend::mse_forward(DType t, const void* a, const void* b, int64_t n, void* loss, Scratch& scratch, Stream s) { throw Error("mse_forward (CUDA): not written yet"); }
void Backend::mse_backward(DType t, const void* a, const void* b, int64_t n, const void* gloss, double scale, void* ga, void* gb, Stream s) { throw Error("mse_backward (CUDA): not written yet"); }

}  // namespace ofa::kernels::OFA_CUDA_NS
