// Scaffold while this family's kernels are written: every method throws
// "not written yet" (nothing calls them yet). Deleted when the family's own
// .cu file defines them.
#include "kernels/cuda/backend_impl.h"

namespace ofa::kernels::OFA_CUDA_NS {

void Backend::index_select_forward(DType t, const void* x, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K, void* out, DeviceError* err, Stream s) { throw Error("index_select_forward (CUDA): not written yet"); }
void Backend::index_select_backward(DType t, const void* gy, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K, void* gx, Stream s) { throw Error("index_select_backward (CUDA): not written yet"); }
void Backend::gather_forward(DType t, const void* x, const int64_t* index, const GatherArgs& a, void* out, DeviceError* err, Stream s) { throw Error("gather_forward (CUDA): not written yet"); }
void Backend::gather_backward(DType t, const void* gy, const int64_t* index, const GatherArgs& a, void* gx, Stream s) { throw Error("gather_backward (CUDA): not written yet"); }
void Backend::argsort(DType t, const void* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out, Stream s) { throw Error("argsort (CUDA): not written yet"); }
void Backend::topk_rank(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, int64_t* rank, DeviceError* err, Stream s) { throw Error("topk_rank (CUDA): not written yet"); }
void Backend::sgd_step(DType t, const SgdCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch, Stream s) { throw Error("sgd_step (CUDA): not written yet"); }
void Backend::adam_step(DType t, const AdamCoeffs<double>& c, const std::vector<OptimTensor>& ts, Scratch& scratch, Stream s) { throw Error("adam_step (CUDA): not written yet"); }

}  // namespace ofa::kernels::OFA_CUDA_NS
