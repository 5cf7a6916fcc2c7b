#include "engine/storage.h"

#include <cstdlib>
#include <cstring>

namespace ofa {

namespace {
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    void* p = nullptr;
    // 64-byte alignment: one cache line, and enough for any SIMD load.
    if (posix_memalign(&p, 64, (nbytes + 63) / 64 * 64) != 0)
      throw Error(str_cat("out of host memory allocating ", nbytes, " bytes"));
    return p;
  }
  void deallocate(void* p, size_t) override { std::free(p); }
};
}  // namespace

#ifdef OFA_WITH_CUDA
Allocator* cuda_allocator(int device);  // engine/cuda_runtime.cu
void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);
int cuda_device_count_impl();
#endif

Allocator* allocator_for(Device d) {
  static CpuAllocator cpu;
  if (d.is_cpu()) return &cpu;
#ifdef OFA_WITH_CUDA
  return cuda_allocator(d.index);
#else
  throw Error("this build has no CUDA backend: reconfigure with -DOFA_CUDA=ON on a machine with the CUDA toolkit");
#endif
}

int cuda_device_count() {
#ifdef OFA_WITH_CUDA
  return cuda_device_count_impl();
#else
  return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device)->allocate(nbytes);
}

Storage::~Storage() {
  if (data_) allocator_for(device_)->deallocate(data_, nbytes_);
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef OFA_WITH_CUDA
  cuda_copy_bytes(dst, dst_dev, src, src_dev, nbytes);
#else
  throw Error("copy to or from a CUDA device in a build without CUDA");
#endif
}

}  // namespace ofa
