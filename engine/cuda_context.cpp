#include "engine/cuda_context.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ofa {

using kernels::CopyKind;
using kernels::CudaBackend;
using kernels::Event;
using kernels::Stream;

namespace {

constexpr int kMaxDevices = 64;

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

// ---------------------------------------------------------------- backend selection

std::mutex g_select_mu;
std::atomic<bool> g_selected{false};
bool g_force_emulation = false;
CudaBackend* g_backend = nullptr;

CudaBackend* select_backend() {
  if (g_selected.load(std::memory_order_acquire)) return g_backend;
  std::lock_guard<std::mutex> lock(g_select_mu);
  if (!g_selected.load(std::memory_order_relaxed)) {
    if (g_force_emulation || env_flag("OFA_CUDA_EMULATION")) {
      g_backend = kernels::emulated_backend();
    } else if (CudaBackend* gpu = kernels::gpu_backend(); gpu && gpu->device_count() > 0) {
      g_backend = gpu;
    }
    g_selected.store(true, std::memory_order_release);
  }
  return g_backend;
}

void check_device(int device) {
  CudaBackend& be = cuda_backend();
  const int n = be.device_count();
  OFA_CHECK(device >= 0 && device < n && device < kMaxDevices, "CUDA device ", device, " does not exist (", n,
            " visible on the ", be.name(), " backend)");
}

// Size classes: 512-byte steps below 1 MiB; above, steps of an eighth of
// the power of two below (at most 12.5% slack) and at least 2 MiB.
size_t size_class(size_t n) {
  constexpr size_t kSmall = size_t(1) << 20;
  if (n < kSmall) return (n + 511) / 512 * 512;
  const size_t top = size_t(1) << (63 - __builtin_clzll(n));
  const size_t step = std::max<size_t>(size_t(2) << 20, top / 8);
  return (n + step - 1) / step * step;
}

std::string mib(size_t b) { return str_cat(static_cast<double>(b) / (1 << 20), " MiB"); }

// ---------------------------------------------------------------- the caching allocator

class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(int device) : device_(device), poison_(env_flag("OFA_CUDA_POISON")) {}

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    CudaBackend& be = cuda_backend();
    const size_t size = size_class(nbytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      collect_ready_locked(be, false);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        ++stats_.cache_hits;
      }
    }
    if (!p) {
      be.set_device(device_);
      p = be.malloc(size);
      if (!p) {
        // Out of memory: give the cache back to the device, then try once more.
        release_cache(be);
        p = be.malloc(size);
      }
      if (!p) {
        size_t free_b = 0, total_b = 0;
        be.mem_info(&free_b, &total_b);
        std::lock_guard<std::mutex> lock(mu_);
        throw Error(str_cat("CUDA out of memory on cuda:", device_, " allocating ", mib(nbytes), " (", mib(size),
                            " with rounding): ", mib(stats_.allocated), " allocated by tensors, ", mib(stats_.reserved),
                            " reserved, ", mib(free_b), " free of ", mib(total_b),
                            "; reduce the batch size or the resolution"));
      }
      std::lock_guard<std::mutex> lock(mu_);
      stats_.reserved += size;
      ++stats_.device_mallocs;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_[p] = Live{size, {}};
      stats_.allocated += size;
      stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    }
    // Poisoning (OFA_CUDA_POISON=1): every fresh tensor reads as NaN until
    // written, so a kernel that leaves elements unwritten shows in the tests.
    if (poison_) be.memset_async(p, 0xFF, size, cuda_stream(device_));
    return p;
  }

  void deallocate(void* p, size_t) override {
    if (!p) return;
    CudaBackend& be = cuda_backend();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    OFA_CHECK(it != live_.end(), "CUDA allocator of cuda:", device_, ": free of a pointer it did not allocate");
    Live l = std::move(it->second);
    live_.erase(it);
    stats_.allocated -= l.size;
    if (l.streams.empty()) {
      free_[l.size].push_back(p);  // reuse in the compute stream's order
      return;
    }
    Pending pd{p, l.size, {}};
    for (Stream s : l.streams) {
      Event e = be.event_create(false);
      be.event_record(e, s);
      pd.events.push_back(e);
    }
    pending_.push_back(std::move(pd));
  }

  void record_stream(void* p, Stream s) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    OFA_CHECK(it != live_.end(), "record_stream: the pointer is no allocation of cuda:", device_,
              " (pass the storage's base pointer)");
    if (s == cuda_stream(device_)) return;
    auto& v = it->second.streams;
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  }

  CudaMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated = stats_.allocated;
  }

  void release_cache(CudaBackend& be) {
    be.set_device(device_);
    be.device_synchronize();
    std::lock_guard<std::mutex> lock(mu_);
    collect_ready_locked(be, true);
    for (auto& [size, blocks] : free_) {
      for (void* q : blocks) {
        be.free(q);
        stats_.reserved -= size;
        ++stats_.device_frees;
      }
    }
    free_.clear();
  }

 private:
  struct Live {
    size_t size;
    std::vector<Stream> streams;  // other streams that used the block
  };
  struct Pending {
    void* p;
    size_t size;
    std::vector<Event> events;
  };

  // Blocks whose other-stream work has finished go back to the free lists.
  void collect_ready_locked(CudaBackend& be, bool all_done) {
    for (size_t i = 0; i < pending_.size();) {
      Pending& pd = pending_[i];
      bool ready = true;
      for (Event e : pd.events) ready = ready && (all_done || be.event_query(e));
      if (!ready) {
        ++i;
        continue;
      }
      for (Event e : pd.events) be.event_destroy(e);
      free_[pd.size].push_back(pd.p);
      pending_[i] = std::move(pending_.back());
      pending_.pop_back();
    }
  }

  int device_;
  bool poison_;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, Live> live_;
  std::vector<Pending> pending_;
  CudaMemoryStats stats_;
};

// ---------------------------------------------------------------- the thread's device

// The CUDA runtime's current device is per thread and starts at 0. A thread
// the engine never gave a device (a data-loader worker pinning a batch) would
// make its CUDA calls on device 0: with one rank per GPU, every rank would
// open a context (hundreds of MiB) on GPU 0. Such a thread adopts the device
// the engine made current last, on any thread: a rank's one device.
thread_local bool tl_has_device = false;  // this thread made a device current through state()
std::atomic<int> g_home_device{-1};

void made_current(int device) {
  tl_has_device = true;
  if (g_home_device.load(std::memory_order_relaxed) != device) g_home_device.store(device, std::memory_order_relaxed);
}

void adopt_home_device(CudaBackend& be) {
  if (tl_has_device) return;
  const int d = g_home_device.load(std::memory_order_relaxed);
  if (d < 0) return;  // the engine has made no device current yet: the runtime's default it is
  be.set_device(d);
  tl_has_device = true;
}

// ---------------------------------------------------------------- pinned host memory

class PinnedAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    CudaBackend& be = cuda_backend();
    adopt_home_device(be);  // cudaHostAlloc and the event queries below: on the rank's device
    const size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    collect_ready_locked(be);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      blocks_[p].in_use = true;
      return p;
    }
    void* p = be.malloc_host(size);
    if (!p) {
      if (!warned_) {
        std::fprintf(stderr, "warning: page-locked host memory refused (%zu bytes); host-to-device copies from "
                             "pageable memory are synchronous\n", size);
        warned_ = true;
      }
      p = nullptr;
      if (posix_memalign(&p, 256, size) != 0) throw Error(str_cat("out of host memory allocating ", nbytes, " bytes"));
      pageable_.insert({p, size});
      return p;
    }
    blocks_[p] = Block{size, true, {}};
    return p;
  }

  void deallocate(void* p, size_t) override {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (pageable_.erase(p)) {
      std::free(p);
      return;
    }
    auto it = blocks_.find(p);
    OFA_CHECK(it != blocks_.end(), "pinned allocator: free of a pointer it did not allocate");
    it->second.in_use = false;
    if (it->second.events.empty()) free_[it->second.size].push_back(p);
    else pending_.push_back(p);
  }

  bool contains(const void* q) {
    std::lock_guard<std::mutex> lock(mu_);
    return find_locked(q) != blocks_.end();
  }

  void record(const void* q, Stream s) {
    CudaBackend& be = cuda_backend();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = find_locked(q);
    if (it == blocks_.end()) return;
    Event e = be.event_create(false);
    be.event_record(e, s);
    it->second.events.push_back(e);
  }

 private:
  struct Block {
    size_t size;
    bool in_use;
    std::vector<Event> events;  // copies reading the block, not yet known to be done
  };

  std::map<void*, Block>::iterator find_locked(const void* q) {
    auto it = blocks_.upper_bound(const_cast<void*>(q));
    if (it == blocks_.begin()) return blocks_.end();
    --it;
    const char* base = static_cast<const char*>(it->first);
    return static_cast<const char*>(q) < base + it->second.size ? it : blocks_.end();
  }

  void collect_ready_locked(CudaBackend& be) {
    for (size_t i = 0; i < pending_.size();) {
      Block& b = blocks_.at(pending_[i]);
      bool ready = true;
      for (Event e : b.events) ready = ready && be.event_query(e);
      if (!ready) {
        ++i;
        continue;
      }
      for (Event e : b.events) be.event_destroy(e);
      b.events.clear();
      free_[b.size].push_back(pending_[i]);
      pending_[i] = pending_.back();
      pending_.pop_back();
    }
  }

  std::mutex mu_;
  std::map<void*, Block> blocks_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::vector<void*> pending_;
  std::unordered_map<void*, size_t> pageable_;
  bool warned_ = false;
};

// ---------------------------------------------------------------- per device

struct DeviceState {
  std::once_flag once;
  Stream stream = nullptr;
  CachingAllocator* alloc = nullptr;
  kernels::DeviceError* err = nullptr;
};
DeviceState g_dev[kMaxDevices];

DeviceState& state(int device) {
  check_device(device);
  DeviceState& d = g_dev[device];
  std::call_once(d.once, [&] {
    CudaBackend& be = cuda_backend();
    be.set_device(device);
    d.stream = be.stream_create();
    d.alloc = new CachingAllocator(device);  // never destroyed: tensors may outlive static destructors
    d.err = static_cast<kernels::DeviceError*>(be.malloc(sizeof(kernels::DeviceError)));
    OFA_CHECK(d.err, "CUDA: cannot allocate the device error record on cuda:", device);
    be.memset_async(d.err, 0, sizeof(kernels::DeviceError), d.stream);
  });
  cuda_backend().set_device(device);
  made_current(device);
  return d;
}

}  // namespace

void set_cuda_emulation(bool on) {
  std::lock_guard<std::mutex> lock(g_select_mu);
  if (g_selected.load()) {
    const bool now = g_backend && g_backend->emulated();
    OFA_CHECK(now == on, "set_cuda_emulation(", on, "): the ",
              g_backend ? g_backend->name() : std::string("no CUDA"),
              " backend is already in use; choose before the first CUDA call (or set OFA_CUDA_EMULATION)");
    return;
  }
  g_force_emulation = on;
}

CudaBackend* cuda_backend_or_null() { return select_backend(); }

CudaBackend& cuda_backend() {
  CudaBackend* b = select_backend();
  if (!b) {
    throw Error(kernels::gpu_backend()
                    ? "no CUDA device is visible (run on a machine with a GPU, or set OFA_CUDA_EMULATION=1 to run "
                      "the CUDA kernels on the CPU emulation)"
                    : "this build has no GPU backend (nvcc was not found at configure time); set "
                      "OFA_CUDA_EMULATION=1 to run the CUDA kernels on the CPU emulation");
  }
  return *b;
}

bool cuda_emulated() {
  CudaBackend* b = select_backend();
  return b && b->emulated();
}

Stream cuda_stream(int device) { return state(device).stream; }

void cuda_synchronize(int device) { cuda_check_errors(device); }

CudaMemoryStats cuda_memory_stats(int device) { return state(device).alloc->stats(); }
void cuda_reset_peak(int device) { state(device).alloc->reset_peak(); }
void cuda_empty_cache(int device) { state(device).alloc->release_cache(cuda_backend()); }
void cuda_record_stream(int device, void* p, Stream s) { state(device).alloc->record_stream(p, s); }
Allocator* cuda_caching_allocator(int device) { return state(device).alloc; }

Allocator* cuda_pinned_allocator() {
  cuda_backend();  // a clear error when there is no CUDA device
  static PinnedAllocator* a = new PinnedAllocator();
  return a;
}
bool cuda_is_pinned(const void* p) {
  return cuda_backend_or_null() && static_cast<PinnedAllocator*>(cuda_pinned_allocator())->contains(p);
}
void cuda_pinned_record(const void* p, Stream s) {
  static_cast<PinnedAllocator*>(cuda_pinned_allocator())->record(p, s);
}

CudaScratch::~CudaScratch() {
  for (int i = 0; i < count_; ++i) cuda_caching_allocator(device_)->deallocate(blocks_[i].p, blocks_[i].n);
}

void* CudaScratch::get(size_t bytes) {
  OFA_CHECK(count_ < 8, "CudaScratch: more than 8 scratch buffers for one op");
  if (bytes == 0) bytes = 1;
  void* p = cuda_caching_allocator(device_)->allocate(bytes);
  blocks_[count_++] = Block{p, bytes};
  return p;
}

kernels::DeviceError* cuda_error_record(int device) { return state(device).err; }

void cuda_check_errors(int device) {
  DeviceState& d = state(device);
  CudaBackend& be = cuda_backend();
  kernels::DeviceError e{};
  be.memcpy_async(&e, d.err, sizeof(e), CopyKind::DeviceToHost, d.stream);
  be.stream_synchronize(d.stream);
  if (e.code == kernels::kErrNone) return;
  be.memset_async(d.err, 0, sizeof(e), d.stream);
  be.stream_synchronize(d.stream);
  switch (e.code) {
    case kernels::kErrTarget:
      throw Error(str_cat("cross_entropy: target ", e.value, " of row ", e.position, " outside [0, ", e.limit,
                          ") (cuda:", device, ")"));
    case kernels::kErrIndexSelect:
      throw Error(str_cat("index_select: index ", e.value, " at position ", e.position, " outside [0, ", e.limit,
                          ") (cuda:", device, ")"));
    case kernels::kErrGather:
      throw Error(str_cat("gather: index ", e.value, " at element ", e.position, " outside [0, ", e.limit,
                          ") (cuda:", device, ")"));
    case kernels::kErrTopkTarget:
      throw Error(str_cat("accuracy: target ", e.value, " of row ", e.position, " outside [0, ", e.limit,
                          ") (cuda:", device, ")"));
    default:
      throw Error(str_cat("CUDA kernel error record: unknown code ", e.code, " (cuda:", device, ")"));
  }
}

}  // namespace ofa
