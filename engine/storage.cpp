#include "engine/storage.h"

#include "engine/cuda_context.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ofa {

namespace {

// Host memory with a cache of freed large blocks. Without it every large
// activation is a fresh mmap that page-faults on first touch (glibc returns
// big blocks to the OS at once): training re-allocates the same sizes every
// step. Sizes round up to quarter-power-of-two classes (at most 25% slack);
// OFA_CPU_CACHE=0 turns the cache off (for sanitizers).
class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() {
    const char* env = std::getenv("OFA_CPU_CACHE");
    enabled_ = !(env && std::string(env) == "0");
  }
  ~CpuAllocator() override {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
  }
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t size = size_class(nbytes);
    if (cached(size)) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        return p;
      }
    }
    void* p = nullptr;
    // 64-byte alignment: one cache line, and enough for any SIMD load.
    if (posix_memalign(&p, 64, size) != 0) {
      release_cache();
      if (posix_memalign(&p, 64, size) != 0) throw Error(str_cat("out of host memory allocating ", nbytes, " bytes"));
    }
    return p;
  }
  void deallocate(void* p, size_t nbytes) override {
    if (!p) return;
    const size_t size = size_class(nbytes);
    if (cached(size)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_bytes_ + size <= kMaxCachedBytes) {
        free_[size].push_back(p);
        cached_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }

 private:
  static constexpr size_t kMinCached = size_t(1) << 16;       // below: glibc's own bins are fine
  static constexpr size_t kMaxCachedBytes = size_t(2) << 30;  // 2 GiB idle at most
  bool cached(size_t size) const { return enabled_ && size >= kMinCached; }
  static size_t size_class(size_t n) {
    n = (n + 63) / 64 * 64;
    if (n < kMinCached) return n;
    size_t top = size_t(1) << (63 - __builtin_clzll(n));
    size_t step = top / 4;
    return (n + step - 1) / step * step;
  }
  void release_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_bytes_ = 0;
  }
  bool enabled_ = true;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
};

}  // namespace

Allocator* allocator_for(Device d) {
  static CpuAllocator cpu;
  if (d.is_cpu()) return &cpu;
  return cuda_caching_allocator(d.index);
}

int cuda_device_count() {
  kernels::CudaBackend* b = cuda_backend_or_null();
  return b ? b->device_count() : 0;
}

bool cuda_available() { return cuda_device_count() > 0; }

Storage::Storage(size_t nbytes, Device device) : Storage(nbytes, device, allocator_for(device)) {}

Storage::Storage(size_t nbytes, Device device, Allocator* alloc) : nbytes_(nbytes), device_(device), alloc_(alloc) {
  data_ = alloc_->allocate(nbytes);
}

Storage::~Storage() {
  if (data_) alloc_->deallocate(data_, nbytes_);
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  OFA_CHECK(dst_dev.is_cpu() || src_dev.is_cpu() || dst_dev == src_dev, "copy between two CUDA devices (",
            src_dev.str(), " to ", dst_dev.str(), ") is not supported; stage it through the CPU");
  const int dev = dst_dev.is_cuda() ? dst_dev.index : src_dev.index;
  const kernels::CopyKind kind = dst_dev.is_cpu()   ? kernels::CopyKind::DeviceToHost
                                 : src_dev.is_cpu() ? kernels::CopyKind::HostToDevice
                                                    : kernels::CopyKind::DeviceToDevice;
  kernels::Stream s = cuda_stream(dev);
  cuda_backend().memcpy_async(dst, src, nbytes, kind, s);
  // Reading results back is where kernels' invalid-index records surface.
  if (kind == kernels::CopyKind::DeviceToHost) cuda_check_errors(dev);
  else cuda_backend().stream_synchronize(s);
}

}  // namespace ofa
