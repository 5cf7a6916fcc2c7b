// Scaffold while this family's kernels are written: every method throws
// "not written yet" (nothing calls them yet). Deleted when the family's own
// .cu file defines them.
#include "kernels/cuda/backend_impl.h"

namespace ofa::kernels::OFA_CUDA_NS {

void Backend::gemm(DType t, const MatArg& A, const MatArg& B, double alpha, double beta, void* C, int64_t ldc, int64_t c_batch_stride, int64_t batch, Stream s) { throw Error("gemm (CUDA): not written yet"); }
void Backend::conv2d_forward(DType, const Conv2dGeom&, const void*, const void*, int64_t, int64_t, const void*, int64_t, void*, Scratch&, Stream) { throw Error("conv2d_forward (CUDA): not written yet"); }
void Backend::conv2d_backward_input(DType, const Conv2dGeom&, const void*, const void*, int64_t, int64_t, void*, Scratch&, Stream) { throw Error("conv2d_backward_input (CUDA): not written yet"); }
void Backend::sum_rows(DType, const void*, int64_t, int64_t, int64_t, void*, int64_t, Scratch&, Stream) { throw Error("sum_rows (CUDA): not written yet"); }
void Backend::fill_rows(DType, void*, int64_t, int64_t, int64_t, const void*, int64_t, Stream) { throw Error("fill_rows (CUDA): not written yet"); }
void Backend::conv2d_backward_weight(DType t, const Conv2dGeom& g, const void* x, const void* dy, void* dw, Scratch& scratch, Stream s) { throw Error("conv2d_backward_weight (CUDA): not written yet"); }

}  // namespace ofa::kernels::OFA_CUDA_NS
