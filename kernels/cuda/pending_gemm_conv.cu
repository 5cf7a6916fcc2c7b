// Scaffold while this family's kernels are written: every method throws
// "not written yet" (nothing calls them yet). Deleted when the family's own
// .cu file defines them.
#include "kernels/cuda/backend_impl.h"

namespace ofa::kernels::OFA_CUDA_NS {

void Backend::gemm(DType t, const MatArg& A, const MatArg& B, double alpha, double beta, void* C, int64_t ldc, int64_t c_batch_stride, int64_t batch, Stream s) { throw Error("gemm (CUDA): not written yet"); }
void Backend::conv2d_forward(DType t, const Conv2dGeom& g, const void* x, const void* w, const void* bias, void* y, Scratch& scratch, Stream s) { throw Error("conv2d_forward (CUDA): not written yet"); }
void Backend::conv2d_backward_input(DType t, const Conv2dGeom& g, const void* dy, const void* w, void* dx, Scratch& scratch, Stream s) { throw Error("conv2d_backward_input (CUDA): not written yet"); }
void Backend::conv2d_backward_weight(DType t, const Conv2dGeom& g, const void* x, const void* dy, void* dw, Scratch& scratch, Stream s) { throw Error("conv2d_backward_weight (CUDA): not written yet"); }

}  // namespace ofa::kernels::OFA_CUDA_NS
