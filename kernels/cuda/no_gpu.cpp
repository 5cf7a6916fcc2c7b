// Builds without nvcc: no GPU backend (the emulated one is always there).
#include "kernels/cuda/backend.h"

namespace ofa::kernels {
CudaBackend* gpu_backend() { return nullptr; }
}  // namespace ofa::kernels
