// A small CPU emulation of the CUDA execution model (in the spirit of Numba's
// CUDA simulator) so that the hand-written kernels' own code runs and is
// tested without a GPU. Kernel sources do not include this header directly:
// they include kernels/cuda/cuda_compat.h, which maps __global__, threadIdx,
// __syncthreads, the warp intrinsics and the launch macro onto it when the
// file is compiled by the host compiler instead of nvcc.
//
// Model: a launch runs its blocks on a few OS threads (blocks in parallel);
// within a block every CUDA thread is a fiber (own stack; a register switch on
// x86-64, ucontext elsewhere) and one OS thread runs them round-robin: a fiber
// runs until it reaches a barrier
// (__syncthreads, or a warp shuffle/vote, which is a barrier among the lanes
// of its mask) and the last arrival releases the others. A barrier that can
// never complete (reached by only part of the block or warp) is reported as an
// error naming the kernel, the block and who waits where.
//
// Static __shared__ variables become `static thread_local` (one OS thread
// runs one block at a time, so they are per block); dynamic shared memory is
// a per-block buffer of exactly the launch's size, filled with 0xFF bytes
// (NaN for floats) so that reads before writes show.
//
// Not emulated (listed by unsupported_features()): cuDNN, cuBLAS, tensor-core
// instructions, cooperative-groups grid sync, streams/events concurrency
// (launches run synchronously), texture/surface memory, clusters and
// distributed shared memory, dynamic parallelism, the memory model's weak
// orderings (fibers interleave only at barriers).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ofa::emu {

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

constexpr int kWarpSize = 32;
// Default per-block dynamic shared memory limit (without the opt-in
// attribute), as on every architecture since sm_20.
constexpr size_t kMaxDynamicShared = 48 * 1024;

// What the emulation cannot run (printed at the start of the emulated tests).
std::vector<std::string> unsupported_features();

// Thread order within a block: Forward runs thread 0 first at every phase,
// Reverse the last first; running a kernel both ways exposes reads of shared
// memory that a missing __syncthreads leaves to the schedule.
enum class Order { Forward, Reverse };
void set_thread_order(Order o);
// OS threads that run blocks (0 = hardware concurrency).
void set_worker_threads(int n);

// Counters since the last reset (for tests of the emulator itself).
struct Stats {
  int64_t launches = 0, blocks = 0, threads = 0, context_switches = 0;
};
Stats stats();
void reset_stats();

// Runs `body` as every thread of a grid; throws ofa::Error on a bad launch
// configuration, a deadlock or an exception from the kernel, naming `kernel`.
void launch(const char* kernel, dim3 grid, dim3 block, size_t dynamic_shared, const std::function<void()>& body);

// --- inside a kernel
const dim3& thread_idx();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_shared();
void syncthreads();
// __syncthreads_count: the barrier, returning how many threads passed pred != 0.
int syncthreads_count(int pred);

enum class WarpOp : int { Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All, SyncWarp };
// One warp-wide exchange: every lane of `mask` must call it with the same op
// and mask; returns this lane's result (value bits, or the ballot).
uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int param, int width);
unsigned active_mask();

template <class T>
T shfl_as(WarpOp op, unsigned mask, T v, int param, int width) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(op, mask, bits, param, width);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

// Atomics: real ones, since blocks run on several OS threads.
template <class T>
T atomic_add(T* p, T v) {
  if constexpr (std::is_integral<T>::value) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
  } else {
    // Floating point: a compare-and-swap loop on the value, as CUDA did
    // before native float atomics.
    T old, desired;
    __atomic_load(p, &old, __ATOMIC_SEQ_CST);
    do {
      desired = old + v;
    } while (!__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return old;
  }
}
template <class T>
T atomic_max(T* p, T v) {
  T old;
  __atomic_load(p, &old, __ATOMIC_SEQ_CST);
  while (old < v && !__atomic_compare_exchange(p, &old, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
template <class T>
T atomic_min(T* p, T v) {
  T old;
  __atomic_load(p, &old, __ATOMIC_SEQ_CST);
  while (v < old && !__atomic_compare_exchange(p, &old, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
template <class T>
T atomic_cas(T* p, T compare, T v) {
  __atomic_compare_exchange(p, &compare, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return compare;  // the old value either way
}
template <class T>
T atomic_exch(T* p, T v) {
  T old;
  __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
  return old;
}

// What OFA_LAUNCH(kernel, grid, block, shmem, stream)(args...) becomes:
// arguments are copied once like CUDA's parameter buffer, and every thread
// calls the kernel with its own copy of the parameters.
template <class F>
class Launcher {
 public:
  Launcher(const char* name, F* fn, dim3 grid, dim3 block, size_t shmem)
      : name_(name), fn_(fn), grid_(grid), block_(block), shmem_(shmem) {}
  template <class... A>
  void operator()(A&&... a) const {
    std::tuple<std::decay_t<A>...> args(std::forward<A>(a)...);
    F* fn = fn_;
    launch(name_, grid_, block_, shmem_, [&] { std::apply(fn, args); });
  }

 private:
  const char* name_;
  F* fn_;
  dim3 grid_, block_;
  size_t shmem_;
};
template <class F>
Launcher<F> make_launcher(const char* name, F* fn, dim3 grid, dim3 block, size_t shmem) {
  return Launcher<F>(name, fn, grid, block, shmem);
}

}  // namespace ofa::emu
