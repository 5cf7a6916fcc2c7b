// The runtime half of the backend: devices, memory, streams, events, copies,
// and the library handles. On the GPU these are CUDA runtime calls, each
// checked; under the emulation device memory is host memory, every stream
// runs in order at once (so events complete when recorded) and copies are
// memcpy.
#include "kernels/cuda/backend_impl.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#if OFA_EMULATED
#include <unistd.h>
#endif

namespace ofa::kernels::OFA_CUDA_NS {

namespace {
std::atomic<int64_t> g_max_blocks{0};
}  // namespace

int64_t max_blocks() {
  const int64_t v = g_max_blocks.load(std::memory_order_relaxed);
  return v > 0 ? v : kDefaultMaxBlocks;
}

void Backend::set_max_blocks(int64_t n) { g_max_blocks = n > 0 ? n : 0; }

Backend& backend_instance() {
  static Backend* b = new Backend();  // never destroyed: handles outlive static tensors
  return *b;
}

#if OFA_EMULATED
// ================================================================ emulated runtime

namespace {
struct EmuEvent {
  std::chrono::steady_clock::time_point t{};
  bool recorded = false;
};
EmuEvent* ev(Event e) { return reinterpret_cast<EmuEvent*>(e); }
constexpr size_t kAlign = 256;  // cudaMalloc's alignment
}  // namespace

Backend::Backend() = default;
Backend::~Backend() = default;
std::string Backend::name() const { return "emulated CUDA (the kernels on the CPU, kernels/cuda/emu)"; }
int Backend::device_count() { return 1; }
DeviceProps Backend::properties(int device) {
  OFA_CHECK(device == 0, "emulated CUDA has one device (0), not ", device);
  DeviceProps p;
  p.name = "emulated CUDA device (CPU)";
  p.major = 9;
  p.minor = 0;
  p.sm_count = 1;
  p.total_memory = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
void Backend::set_device(int device) { OFA_CHECK(device == 0, "emulated CUDA has one device (0), not ", device); }
int Backend::current_device() { return 0; }
void* Backend::malloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kAlign, (bytes + kAlign - 1) / kAlign * kAlign) != 0) return nullptr;
  return p;
}
void Backend::free(void* p) { std::free(p); }
void Backend::mem_info(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = properties(0).total_memory;
  *free_bytes = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}
void* Backend::malloc_host(size_t bytes) { return malloc(bytes); }
void Backend::free_host(void* p) { std::free(p); }
Stream Backend::stream_create() { return reinterpret_cast<Stream>(new char(0)); }
void Backend::stream_destroy(Stream s) { delete reinterpret_cast<char*>(s); }
void Backend::stream_synchronize(Stream) {}
void Backend::device_synchronize() {}
Event Backend::event_create(bool) { return reinterpret_cast<Event>(new EmuEvent()); }
void Backend::event_destroy(Event e) { delete ev(e); }
void Backend::event_record(Event e, Stream) {
  ev(e)->t = std::chrono::steady_clock::now();
  ev(e)->recorded = true;
}
bool Backend::event_query(Event) { return true; }
void Backend::event_synchronize(Event) {}
void Backend::stream_wait_event(Stream, Event) {}
float Backend::event_elapsed_ms(Event a, Event b) {
  OFA_CHECK(ev(a)->recorded && ev(b)->recorded, "event_elapsed_ms: an event was never recorded");
  return std::chrono::duration<float, std::milli>(ev(b)->t - ev(a)->t).count();
}
void Backend::memcpy_async(void* dst, const void* src, size_t bytes, CopyKind, Stream) {
  if (bytes) std::memmove(dst, src, bytes);
}
void Backend::memset_async(void* dst, int byte, size_t bytes, Stream) {
  if (bytes) std::memset(dst, byte, bytes);
}

CudaBackend* emulated_backend_impl() { return &backend_instance(); }

#else
// ================================================================ the CUDA runtime

Backend::Backend() = default;
Backend::~Backend() = default;  // never run (see backend_instance)
std::string Backend::name() const { return "CUDA"; }

int Backend::device_count() {
  int n = 0;
  // No driver or no device is not an error: the build then runs on the CPU.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

DeviceProps Backend::properties(int device) {
  cudaDeviceProp p{};
  OFA_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceProps d;
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.total_memory = p.totalGlobalMem;
  return d;
}

void Backend::set_device(int device) { OFA_CUDA_CHECK(cudaSetDevice(device)); }

int Backend::current_device() {
  int d = 0;
  OFA_CUDA_CHECK(cudaGetDevice(&d));
  OFA_CHECK(d >= 0 && d < kMaxDevices, "CUDA device ", d, " beyond the ", kMaxDevices, " this build handles");
  return d;
}

void* Backend::malloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: the caller frees its cache and retries
    return nullptr;
  }
  OFA_CUDA_CHECK(e);
  return p;
}
void Backend::free(void* p) { OFA_CUDA_CHECK(cudaFree(p)); }
void Backend::mem_info(size_t* free_bytes, size_t* total_bytes) { OFA_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes)); }
void* Backend::malloc_host(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}
void Backend::free_host(void* p) { OFA_CUDA_CHECK(cudaFreeHost(p)); }
Stream Backend::stream_create() {
  cudaStream_t s = nullptr;
  OFA_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void Backend::stream_destroy(Stream s) { OFA_CUDA_CHECK(cudaStreamDestroy(s)); }
void Backend::stream_synchronize(Stream s) { OFA_CUDA_CHECK(cudaStreamSynchronize(s)); }
void Backend::device_synchronize() { OFA_CUDA_CHECK(cudaDeviceSynchronize()); }
Event Backend::event_create(bool timing) {
  cudaEvent_t e = nullptr;
  OFA_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}
void Backend::event_destroy(Event e) { OFA_CUDA_CHECK(cudaEventDestroy(e)); }
void Backend::event_record(Event e, Stream s) { OFA_CUDA_CHECK(cudaEventRecord(e, s)); }
bool Backend::event_query(Event e) {
  const cudaError_t r = cudaEventQuery(e);
  if (r == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  OFA_CUDA_CHECK(r);
  return true;
}
void Backend::event_synchronize(Event e) { OFA_CUDA_CHECK(cudaEventSynchronize(e)); }
void Backend::stream_wait_event(Stream s, Event e) { OFA_CUDA_CHECK(cudaStreamWaitEvent(s, e, 0)); }
float Backend::event_elapsed_ms(Event a, Event b) {
  float ms = 0.f;
  OFA_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}
void Backend::memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s) {
  if (!bytes) return;
  const cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                           : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                            : cudaMemcpyDeviceToDevice;
  OFA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, s));
}
void Backend::memset_async(void* dst, int byte, size_t bytes, Stream s) {
  if (bytes) OFA_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, s));
}

cublasHandle_t Backend::blas(Stream s) {
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mu_);
  if (!blas_[d]) {
    OFA_CUBLAS_CHECK(cublasCreate(&blas_[d]));
    // Pedantic float32 (no TF32): results comparable with the CPU reference.
    OFA_CUBLAS_CHECK(cublasSetMathMode(blas_[d], CUBLAS_PEDANTIC_MATH));
  }
  OFA_CUBLAS_CHECK(cublasSetStream(blas_[d], s));
  return blas_[d];
}

cudnnHandle_t Backend::dnn(Stream s) {
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mu_);
  if (!dnn_[d]) OFA_CUDNN_CHECK(cudnnCreate(&dnn_[d]));
  OFA_CUDNN_CHECK(cudnnSetStream(dnn_[d], s));
  return dnn_[d];
}

CudaBackend* gpu_backend_impl() { return &backend_instance(); }

#endif

}  // namespace ofa::kernels::OFA_CUDA_NS

namespace ofa::kernels {
#if OFA_EMULATED
CudaBackend* emulated_backend() { return cuda_emu::emulated_backend_impl(); }
#else
CudaBackend* gpu_backend() { return cuda::gpu_backend_impl(); }
#endif
}  // namespace ofa::kernels
