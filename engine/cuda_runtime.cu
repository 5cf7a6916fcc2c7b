// The CUDA half of Storage: device count, allocation and copies. A plain
// cudaMalloc per storage for now; the caching allocator is the CUDA backend's.
#include "engine/cuda_check.h"
#include "engine/storage.h"

namespace ofa {

int cuda_device_count_impl() {
  int n = 0;
  // No driver or no device is not an error: the build just runs on the CPU.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

namespace {
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int device) : device_(device) {}
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    void* p = nullptr;
    OFA_CUDA_CHECK(cudaSetDevice(device_));
    OFA_CUDA_CHECK(cudaMalloc(&p, nbytes));
    return p;
  }
  void deallocate(void* p, size_t) override {
    cudaSetDevice(device_);
    cudaFree(p);
  }

 private:
  int device_;
};
}  // namespace

Allocator* cuda_allocator(int device) {
  static CudaAllocator* allocators[64] = {};
  OFA_CHECK(device >= 0 && device < 64 && device < cuda_device_count_impl(), "CUDA device ", device,
            " does not exist (", cuda_device_count_impl(), " visible)");
  if (!allocators[device]) allocators[device] = new CudaAllocator(device);
  return allocators[device];
}

void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  cudaMemcpyKind kind = dst_dev.is_cpu() ? cudaMemcpyDeviceToHost
                        : src_dev.is_cpu() ? cudaMemcpyHostToDevice
                                           : cudaMemcpyDeviceToDevice;
  OFA_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, kind));
}

}  // namespace ofa
