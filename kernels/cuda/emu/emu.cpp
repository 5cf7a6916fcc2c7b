#include "kernels/cuda/emu/emu.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/common.h"

#if defined(__SANITIZE_ADDRESS__)
#define OFA_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OFA_EMU_ASAN 1
#endif
#endif
#ifdef OFA_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace ofa::emu {

std::vector<std::string> unsupported_features() {
  return {
      "cuDNN calls: the emulated conv2d runs a reference loop of the call's semantics (the argument mapping and the packing kernels are tested; cuDNN itself runs only in the CUDA tests on a GPU)",
      "cuBLAS calls: the emulated gemm runs a reference loop of the call's semantics (the mapping onto column-major cuBLAS arguments is tested; cuBLAS itself runs only in the CUDA tests on a GPU)",
      "tensor-core instructions (wmma, mma.sync, wgmma) and inline PTX",
      "cooperative groups grid-wide sync (this_grid().sync()), clusters and distributed shared memory",
      "dynamic parallelism (launches from device code)",
      "streams and events concurrency: every launch runs synchronously, in order",
      "texture and surface memory, __constant__ memory limits, warp-level matrix and async-copy (cp.async, TMA)",
      "the weak memory model: threads interleave only at barriers and warp operations, so races that need "
      "preemption between two plain accesses are not reproduced",
      "static __shared__ size limits (only dynamic shared memory is checked against 48 KiB) and its "
      "uninitialised contents (static shared arrays keep the previous block's values)",
  };
}

namespace {

// Errors the emulator raises inside a kernel already name the kernel.
class EmuError : public Error {
 public:
  using Error::Error;
};

std::atomic<int> g_order{0};
std::atomic<int> g_workers{0};
std::atomic<int64_t> g_launches{0}, g_blocks{0}, g_threads{0}, g_switches{0};

#ifdef OFA_EMU_ASAN
constexpr size_t kStackSize = 256 * 1024;  // ASan's redzones make frames larger
#else
constexpr size_t kStackSize = 64 * 1024;
#endif

enum class FState : uint8_t { Runnable, AtBarrier, AtWarp, Done };

// A fiber's saved execution context. On x86-64 a switch saves the callee-saved
// registers (and the SSE and x87 control words) on the old stack and loads the
// new stack pointer: no system call, where glibc's swapcontext makes one
// (sigprocmask) per switch, which was most of the emulated tests' time.
// Elsewhere, ucontext.
#if defined(__x86_64__) && defined(__ELF__)
extern "C" void ofa_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .globl ofa_emu_switch
  .hidden ofa_emu_switch
  .type ofa_emu_switch, @function
ofa_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ofa_emu_switch, .-ofa_emu_switch
)");

struct Context {
  void* sp = nullptr;
};
// A context that starts `entry` (which must never return) on [stack, stack + size):
// the frame ofa_emu_switch pops, its return address `entry`, above it a null
// return address for `entry`, so that it starts as if called (rsp = 8 mod 16).
void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
#ifdef OFA_EMU_ASAN
  // The last fiber on this stack ended in a switch, not a return: its first
  // frame's redzones are still poisoned (ASan's swapcontext interceptor used
  // to clear a context's stack the same way).
  ASAN_UNPOISON_MEMORY_REGION(stack, size);
#endif
  auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15);
  auto* w = reinterpret_cast<uint64_t*>(top);
  w[-1] = 0;                                    // entry's return address
  w[-2] = reinterpret_cast<uint64_t>(entry);    // ofa_emu_switch returns here
  for (int r = 3; r <= 8; ++r) w[-r] = 0;       // rbp, rbx, r12..r15
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  w[-9] = mxcsr | uint64_t(fpucw) << 32;        // the caller's control words
  c.sp = &w[-9];
}
void switch_context(Context& from, Context& to) { ofa_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

struct Fiber {
  Context ctx;
  dim3 tid;
  int linear = 0;
  FState state = FState::Runnable;
  char* stack = nullptr;  // usable stack (a guard page lies below it)
  void* fake_stack = nullptr;
  uint64_t warp_value = 0, warp_result = 0;
  int warp_param = 0, warp_width = 32;
};

struct WarpState {
  unsigned arrived = 0, mask = 0, exists = 0;
  WarpOp op = WarpOp::SyncWarp;
};

struct Block {
  const char* kernel = "";
  dim3 grid, bdim, bidx;
  const std::function<void()>* body = nullptr;
  std::vector<Fiber>* fibers = nullptr;
  std::vector<int> queue;  // FIFO of runnable fibers (ring over a vector)
  size_t qhead = 0;
  int nthreads = 0, barrier_arrived = 0;
  int barrier_count = 0, barrier_result = 0;  // __syncthreads_count: running sum, published result
  std::vector<WarpState> warps;
  unsigned char* shared = nullptr;
  bool failed = false;
  std::string error;
  Context sched_ctx;
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  int64_t switches = 0;
};

thread_local Block* tl_block = nullptr;
thread_local Fiber* tl_fiber = nullptr;

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Shfl:
      return "__shfl_sync";
    case WarpOp::ShflUp:
      return "__shfl_up_sync";
    case WarpOp::ShflDown:
      return "__shfl_down_sync";
    case WarpOp::ShflXor:
      return "__shfl_xor_sync";
    case WarpOp::Ballot:
      return "__ballot_sync";
    case WarpOp::Any:
      return "__any_sync";
    case WarpOp::All:
      return "__all_sync";
    case WarpOp::SyncWarp:
      return "__syncwarp";
  }
  return "?";
}

std::string dim_str(dim3 d) { return str_cat("(", d.x, ",", d.y, ",", d.z, ")"); }
std::string hex(unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", m);
  return buf;
}
std::string where(const Block* b) { return str_cat("emulated kernel '", b->kernel, "' block ", dim_str(b->bidx)); }

Block* need_block(const char* what) {
  if (!tl_block || !tl_fiber)
    throw Error(str_cat(what, " used outside an emulated kernel (only code run by OFA_LAUNCH may call it)"));
  return tl_block;
}

void push(Block* b, int i) {
  (*b->fibers)[i].state = FState::Runnable;
  b->queue.push_back(i);
}

// Pushes the fibers selected by `pick` in the configured thread order.
template <class P>
void push_in_order(Block* b, P pick) {
  const int n = b->nthreads;
  if (g_order.load() == 0) {
    for (int i = 0; i < n; ++i)
      if (pick(i)) push(b, i);
  } else {
    for (int i = n - 1; i >= 0; --i)
      if (pick(i)) push(b, i);
  }
}

// From a fiber back to its block's scheduler; returns when rescheduled.
void yield_to_scheduler() {
  Block* b = tl_block;
  Fiber* f = tl_fiber;
#ifdef OFA_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->fake_stack, b->sched_bottom, b->sched_size);
#endif
  switch_context(f->ctx, b->sched_ctx);
#ifdef OFA_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &b->sched_bottom, &b->sched_size);
#endif
}

void fiber_entry() {
  Block* b = tl_block;
  Fiber* f = tl_fiber;
#ifdef OFA_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b->sched_bottom, &b->sched_size);
#endif
  try {
    (*b->body)();
  } catch (const EmuError& e) {
    if (!b->failed) b->error = e.what();
    b->failed = true;
  } catch (const std::exception& e) {
    if (!b->failed) b->error = str_cat(where(b), " thread ", dim_str(f->tid), ": ", e.what());
    b->failed = true;
  } catch (...) {
    if (!b->failed) b->error = str_cat(where(b), " thread ", dim_str(f->tid), ": unknown exception");
    b->failed = true;
  }
  f->state = FState::Done;
  b = tl_block;
#ifdef OFA_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, b->sched_bottom, b->sched_size);
#endif
  switch_context(f->ctx, b->sched_ctx);  // never resumed
}

// Lanes of a mask as runs: {0-15,20}.
std::string lanes_str(unsigned m) {
  std::string s;
  for (int l = 0; l < 32;) {
    if (!(m >> l & 1u)) {
      ++l;
      continue;
    }
    int e = l;
    while (e + 1 < 32 && (m >> (e + 1) & 1u)) ++e;
    s += (s.empty() ? "" : ",") + std::to_string(l) + (e > l ? "-" + std::to_string(e) : "");
    l = e + 1;
  }
  return "{" + s + "}";
}

// Why no fiber can run although some have not finished.
std::string deadlock_message(const Block* b) {
  const auto& fs = *b->fibers;
  int at_barrier = 0, done = 0, at_warp = 0;
  for (const Fiber& f : fs) {
    at_barrier += f.state == FState::AtBarrier;
    done += f.state == FState::Done;
    at_warp += f.state == FState::AtWarp;
  }
  std::string m = str_cat(where(b), ": deadlock (", b->nthreads, " threads, blockDim ", dim_str(b->bdim), "): ");
  if (at_barrier)
    m += str_cat("__syncthreads() reached by ", at_barrier, " of ", b->nthreads, " threads (", done, " exited, ",
                 at_warp, " waiting in warp operations): a barrier in divergent code; ");
  for (size_t w = 0; w < b->warps.size(); ++w) {
    const WarpState& ws = b->warps[w];
    if (!ws.arrived) continue;
    unsigned missing = ws.mask & ~ws.arrived;
    m += str_cat("warp ", w, ": lanes ", lanes_str(ws.arrived), " wait in ", op_name(ws.op), "(mask ", hex(ws.mask),
                 ") for lanes ", lanes_str(missing), "; ");
  }
  return m.substr(0, m.size() - 2);  // the last "; " or ": "
}

// Runs one block to completion on the calling OS thread.
void run_block(Block* b) {
  std::vector<Fiber>& fs = *b->fibers;
  b->queue.clear();
  b->qhead = 0;
  b->barrier_arrived = 0;
  b->barrier_count = 0;
  for (WarpState& w : b->warps) w.arrived = 0;
  for (int i = 0; i < b->nthreads; ++i) {
    Fiber& f = fs[i];
    f.linear = i;
    f.tid = dim3(i % b->bdim.x, (i / b->bdim.x) % b->bdim.y, i / (b->bdim.x * b->bdim.y));
    f.fake_stack = nullptr;
    make_context(f.ctx, f.stack, kStackSize, fiber_entry);
  }
  push_in_order(b, [](int) { return true; });
  tl_block = b;
  while (b->qhead < b->queue.size() && !b->failed) {
    Fiber* f = &fs[b->queue[b->qhead++]];
    if (b->qhead > 4096 && b->qhead * 2 > b->queue.size()) {  // keep the ring small
      b->queue.erase(b->queue.begin(), b->queue.begin() + static_cast<long>(b->qhead));
      b->qhead = 0;
    }
    tl_fiber = f;
    ++b->switches;
#ifdef OFA_EMU_ASAN
    __sanitizer_start_switch_fiber(&b->sched_fake, f->stack, kStackSize);
#endif
    switch_context(b->sched_ctx, f->ctx);
#ifdef OFA_EMU_ASAN
    __sanitizer_finish_switch_fiber(b->sched_fake, nullptr, nullptr);
#endif
  }
  tl_fiber = nullptr;
  tl_block = nullptr;
  if (b->failed) return;
  for (const Fiber& f : fs)
    if (f.state != FState::Done) {
      b->failed = true;
      b->error = deadlock_message(b);
      return;
    }
}

// Per OS thread: fiber stacks with a guard page below each (a stack overflow
// faults instead of corrupting the neighbour).
struct StackPool {
  char* base = nullptr;
  size_t bytes = 0;
  int capacity = 0;
  explicit StackPool(int n) : capacity(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t per = kStackSize + page;
    bytes = per * static_cast<size_t>(n);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw Error(str_cat("emulator: cannot map ", bytes, " bytes of fiber stacks"));
    base = static_cast<char*>(p);
    for (int i = 0; i < n; ++i) mprotect(base + per * static_cast<size_t>(i), page, PROT_NONE);
  }
  char* stack(int i) const {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return base + (kStackSize + page) * static_cast<size_t>(i) + page;
  }
  ~StackPool() { munmap(base, bytes); }
};

// Pools kept between launches: mapping stacks and their guard pages costs a
// system call per fiber, and kernels are launched by the thousand. A worker
// takes the smallest free pool that is large enough (capacities are powers of
// two) and gives it back after the launch.
class StackPools {
 public:
  std::unique_ptr<StackPool> take(int n) {
    int cap = 32;
    while (cap < n) cap *= 2;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if ((*it)->capacity >= cap && (best == free_.end() || (*it)->capacity < (*best)->capacity)) best = it;
      if (best != free_.end()) {
        std::unique_ptr<StackPool> p = std::move(*best);
        free_.erase(best);
        return p;
      }
    }
    return std::make_unique<StackPool>(cap);
  }
  void give_back(std::unique_ptr<StackPool> p) {
#ifdef OFA_EMU_ASAN
    // Frames of fibers abandoned at a failure keep their poisoned redzones.
    ASAN_UNPOISON_MEMORY_REGION(p->base, p->bytes);  // shadow only: the guard pages stay
#endif
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < 16) free_.push_back(std::move(p));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<StackPool>> free_;
};
StackPools& stack_pools() {
  static StackPools* pools = new StackPools;  // never destroyed: launches may run during exit
  return *pools;
}

}  // namespace

void set_thread_order(Order o) { g_order = o == Order::Forward ? 0 : 1; }
void set_worker_threads(int n) { g_workers = n; }
Stats stats() { return {g_launches.load(), g_blocks.load(), g_threads.load(), g_switches.load()}; }
void reset_stats() { g_launches = g_blocks = g_threads = g_switches = 0; }

void launch(const char* kernel, dim3 grid, dim3 block, size_t dynamic_shared, const std::function<void()>& body) {
  auto bad = [&](const std::string& why) {
    return Error(str_cat("emulated launch of '", kernel, "' <<<", dim_str(grid), ", ", dim_str(block), ", ",
                         dynamic_shared, ">>>: ", why));
  };
  if (tl_block) throw bad("a launch from device code (dynamic parallelism) is not emulated");
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    throw bad("invalid grid (x in 1..2^31-1, y and z in 1..65535)");
  const uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  if (block.x < 1 || block.y < 1 || block.z < 1 || block.x > 1024 || block.y > 1024 || block.z > 64 || nthreads > 1024)
    throw bad("invalid block (x, y <= 1024, z <= 64, at most 1024 threads)");
  if (dynamic_shared > kMaxDynamicShared)
    throw bad(str_cat("dynamic shared memory of ", dynamic_shared, " bytes exceeds the ", kMaxDynamicShared,
                      "-byte limit per block"));
  const int64_t nblocks = int64_t(grid.x) * grid.y * grid.z;
  ++g_launches;
  int workers = g_workers.load();
  if (workers <= 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers = static_cast<int>(std::min<int64_t>(workers, nblocks));

  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string first_error;
  auto worker = [&] {
    try {
      struct Lease {
        std::unique_ptr<StackPool> pool;
        ~Lease() { stack_pools().give_back(std::move(pool)); }
      } lease{stack_pools().take(static_cast<int>(nthreads))};
      std::vector<Fiber> fibers(nthreads);
      for (uint64_t i = 0; i < nthreads; ++i) fibers[i].stack = lease.pool->stack(static_cast<int>(i));
      std::unique_ptr<unsigned char[]> shared(new unsigned char[dynamic_shared]);
      Block b;
      b.kernel = kernel;
      b.grid = grid;
      b.bdim = block;
      b.body = &body;
      b.fibers = &fibers;
      b.nthreads = static_cast<int>(nthreads);
      b.shared = shared.get();
      b.warps.resize((nthreads + 31) / 32);
      for (size_t w = 0; w < b.warps.size(); ++w) {
        const uint64_t lanes = std::min<uint64_t>(32, nthreads - 32 * w);
        b.warps[w].exists = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
      }
      int64_t done_blocks = 0;
      for (int64_t i; !stop.load() && (i = next.fetch_add(1)) < nblocks;) {
        b.bidx = dim3(static_cast<unsigned>(i % grid.x), static_cast<unsigned>((i / grid.x) % grid.y),
                      static_cast<unsigned>(i / (int64_t(grid.x) * grid.y)));
        std::memset(b.shared, 0xFF, dynamic_shared);  // NaN for floats: reads before writes show
        run_block(&b);
        ++done_blocks;
        if (b.failed) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = b.error;
          stop = true;
        }
      }
      g_blocks += done_blocks;
      g_threads += done_blocks * static_cast<int64_t>(nthreads);
      g_switches += b.switches;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = e.what();
      stop = true;
    }
  };
  if (workers == 1) {
    worker();
  } else {
    std::vector<std::thread> ts;
    for (int t = 0; t < workers; ++t) ts.emplace_back(worker);
    for (auto& t : ts) t.join();
  }
  if (!first_error.empty()) throw Error(first_error);
}

const dim3& thread_idx() {
  need_block("threadIdx");
  return tl_fiber->tid;
}
const dim3& block_idx() { return need_block("blockIdx")->bidx; }
const dim3& block_dim() { return need_block("blockDim")->bdim; }
const dim3& grid_dim() { return need_block("gridDim")->grid; }
void* dynamic_shared() { return need_block("extern __shared__ memory")->shared; }

int syncthreads_count(int pred) {
  Block* b = need_block("__syncthreads()");
  tl_fiber->state = FState::AtBarrier;
  b->barrier_count += pred != 0;
  if (++b->barrier_arrived == b->nthreads) {
    // The last arrival publishes the count and releases everyone (itself
    // included) in thread order. Each reads the result as soon as it
    // resumes, before any thread can complete the next barrier.
    b->barrier_result = b->barrier_count;
    b->barrier_arrived = b->barrier_count = 0;
    push_in_order(b, [b](int i) { return (*b->fibers)[i].state == FState::AtBarrier; });
  }
  yield_to_scheduler();
  return b->barrier_result;
}

void syncthreads() { syncthreads_count(0); }

unsigned active_mask() {
  Block* b = need_block("__activemask()");
  const int w = tl_fiber->linear / 32;
  unsigned m = 0;
  for (int l = 0; l < 32; ++l) {
    const int i = w * 32 + l;
    if (i < b->nthreads && (*b->fibers)[i].state != FState::Done) m |= 1u << l;
  }
  return m;
}

uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int param, int width) {
  Block* b = need_block(op_name(op));
  Fiber* f = tl_fiber;
  const int lane = f->linear % 32, w = f->linear / 32;
  WarpState& ws = b->warps[w];
  // Built only when throwing: a fiber abandoned at a deadlock must hold no heap memory.
  auto who = [&] { return str_cat(where(b), " thread ", dim_str(f->tid), " (warp ", w, " lane ", lane, "): "); };
  if (!(mask >> lane & 1u))
    throw EmuError(str_cat(who(), op_name(op), " with mask ", hex(mask), " that excludes the calling lane"));
  if (mask & ~ws.exists)
    throw EmuError(str_cat(who(), op_name(op), " with mask ", hex(mask),
                           " names lanes that do not exist (the block has ", b->nthreads,
                           " threads; the warp's lanes are ", hex(ws.exists), ")"));
  if (width < 1 || width > 32 || (width & (width - 1)))
    throw EmuError(str_cat(who(), op_name(op), " with width ", width, " (must be a power of two <= 32)"));
  if (ws.arrived && (ws.op != op || ws.mask != mask))
    throw EmuError(str_cat(who(), op_name(op), "(mask ", hex(mask), ") while lanes ", lanes_str(ws.arrived),
                           " wait in ", op_name(ws.op), "(mask ", hex(ws.mask), "): divergent warp operations"));
  ws.op = op;
  ws.mask = mask;
  f->warp_value = value;
  f->warp_param = param;
  f->warp_width = width;
  f->state = FState::AtWarp;
  ws.arrived |= 1u << lane;
  if (ws.arrived == mask) {
    std::vector<Fiber>& fs = *b->fibers;
    Fiber* lanes = &fs[static_cast<size_t>(w) * 32];
    unsigned votes = 0;
    for (int l = 0; l < 32; ++l)
      if ((mask >> l & 1u) && lanes[l].warp_value != 0) votes |= 1u << l;
    for (int l = 0; l < 32; ++l) {
      if (!(mask >> l & 1u)) continue;
      Fiber& L = lanes[l];
      const int wd = L.warp_width, seg = l & ~(wd - 1), p = L.warp_param;
      int src = l;
      switch (op) {
        case WarpOp::Shfl:
          src = seg + (((p % wd) + wd) % wd);
          break;
        case WarpOp::ShflUp:
          src = (l - seg) < p ? l : l - p;
          break;
        case WarpOp::ShflDown:
          src = (l - seg) + p >= wd ? l : l + p;
          break;
        case WarpOp::ShflXor:
          src = l ^ p;
          if (src < 0 || src > 31 || src >= seg + wd) src = l;
          break;
        case WarpOp::Ballot:
          L.warp_result = votes;
          continue;
        case WarpOp::Any:
          L.warp_result = votes != 0;
          continue;
        case WarpOp::All:
          L.warp_result = votes == mask;
          continue;
        case WarpOp::SyncWarp:
          L.warp_result = 0;
          continue;
      }
      if (!(mask >> src & 1u)) {
        ws.arrived = 0;
        throw EmuError(str_cat(where(b), " warp ", w, " lane ", l, ": ", op_name(op), " reads lane ", src,
                               " which is not in the mask ", hex(mask), " (its value is undefined on a GPU)"));
      }
      L.warp_result = lanes[src].warp_value;
    }
    ws.arrived = 0;
    push_in_order(b, [&](int i) { return i / 32 == w && (mask >> (i % 32) & 1u); });
  }
  yield_to_scheduler();
  return f->warp_result;
}

}  // namespace ofa::emu
