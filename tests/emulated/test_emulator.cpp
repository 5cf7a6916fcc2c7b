// The CUDA emulation itself: indices, shared memory and barriers, warp
// shuffles and votes, atomics across parallel blocks, and the misuse it must
// report (partial barriers, divergent warp operations, bad launches).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cuda/cuda_compat.h"
#include "tests/emulated/emu_test_support.h"

using ofa_emu_test::emu_error_of;

namespace {

bool has_part(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ------------------------------------------------------------------ kernels

__global__ void write_ids(int64_t* out, int* hits) {
  const int64_t tid = threadIdx.x + int64_t(blockDim.x) * (threadIdx.y + int64_t(blockDim.y) * threadIdx.z);
  const int64_t bid = blockIdx.x + int64_t(gridDim.x) * (blockIdx.y + int64_t(gridDim.y) * blockIdx.z);
  const int64_t nt = int64_t(blockDim.x) * blockDim.y * blockDim.z;
  const int64_t g = bid * nt + tid;
  out[g] = g;
  atomicAdd(&hits[g], 1);
}

// Block-wide reverse through shared memory: correct only with the barrier.
__global__ void block_reverse(const int* in, int* out, int with_barrier) {
  __shared__ int s[256];
  const int t = threadIdx.x;
  const int64_t base = int64_t(blockIdx.x) * blockDim.x;
  s[t] = in[base + t];
  if (with_barrier) __syncthreads();
  out[base + t] = s[blockDim.x - 1 - t];
}

// Sum of a block: warp shuffles then shared memory.
__global__ void block_sum(const float* in, int64_t n, float* out) {
  __shared__ float warp_sums[32];
  float v = 0.f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    v += in[i];
  for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
    if (lane == 0) out[blockIdx.x] = v;
  }
}

__global__ void shuffle_kinds(int* out, int width) {
  const int lane = threadIdx.x;
  const int v = 100 + lane;
  out[0 * 32 + lane] = __shfl_sync(0xffffffffu, v, 3, width);
  out[1 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 2, width);
  out[2 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 2, width);
  out[3 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 1, width);
  const double d = 0.5 * lane;
  out[4 * 32 + lane] = static_cast<int>(2.0 * __shfl_xor_sync(0xffffffffu, d, 5));
}

__global__ void votes(unsigned* ballot, int* any, int* all) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  ballot[warp] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  any[warp] = __any_sync(0xffffffffu, warp == 1 && lane == 7);
  all[warp] = __all_sync(0xffffffffu, warp == 2 || lane < 31);
  // A vote among the even lanes only: the mask names exactly the callers.
  if (lane % 2 == 0) {
    const unsigned m = __ballot_sync(0x55555555u, lane < 8);
    if (lane == 0) ballot[4 + warp] = m;
  }
}

__global__ void atomics(int* ci, unsigned long long* cu, float* cf, double* cd, int* mx) {
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(ci, 1);
  atomicAdd(cu, 2ull);
  atomicAdd(cf, 1.0f);
  atomicAdd(cd, 0.5);
  atomicMax(mx, g);
}

__global__ void partial_barrier(int* out) {
  if (threadIdx.x < 100) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void exit_before_barrier(int* out, int n) {
  if (int(threadIdx.x) >= n) return;  // the classic bug: the tail skips the barrier
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void divergent_shuffle(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x % 32 < 16) v = __shfl_sync(0xffffffffu, v, 0);
  out[threadIdx.x] = v;
}

__global__ void mask_without_self(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1, 0); }

__global__ void dynamic_shared_probe(float* out, int n) {
  OFA_DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x;
  out[t] = buf[t];  // before any write: the poison
  __syncthreads();
  buf[(t + 1) % n] = float(t);
  __syncthreads();
  out[n + t] = buf[t];
}

__global__ void barrier_votes(int* out) {
  const int t = threadIdx.x;
  const int c = __syncthreads_count(t % 3 == 0);
  const int a = __syncthreads_and(t < 1000);
  const int o = __syncthreads_or(t == 77);
  const int none = __syncthreads_or(0);
  out[t] = c * 1000 + a * 100 + o * 10 + none;
}

__global__ void throws_inside(int* out) {
  OFA_CHECK(threadIdx.x != 5, "thread 5 refuses");
  out[threadIdx.x] = 1;
}

// Stack in use at every level of a recursion that ends in a barrier: each
// fiber's frames must survive the other fibers running in between.
__device__ int64_t deep_sum(int64_t a, int depth) {
  if (depth == 0) {
    __syncthreads();
    return 3 * a + 1;
  }
  volatile int64_t pad[16];
  for (int i = 0; i < 16; ++i) pad[i] = a * 16 + i;
  const int64_t below = deep_sum(a + 1, depth - 1);
  int64_t s = 0;
  for (int i = 0; i < 16; ++i) s += pad[i];
  return below + s;
}

// Many values live across every barrier and shuffle (the registers a switch
// saves), then the recursion above.
__global__ void live_values(int64_t* out, int rounds) {
  const int64_t t = threadIdx.x;
  int64_t a = t, b = 2 * t + 1, c = t * t, d = 7 - t, e = t ^ 5, g = 11 * t;
  double x = 0.5 * double(t);
  for (int r = 0; r < rounds; ++r) {
    __syncthreads();
    a += b;
    b ^= c;
    c += 3 * d;
    d -= a;
    e = e * 5 + g;
    g = __shfl_xor_sync(0xffffffffu, g, 1) + r;
    x = 0.5 * x + double(r);
  }
  out[blockIdx.x * blockDim.x + t] =
      a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * g + static_cast<int64_t>(4 * x) + deep_sum(t, 24);
}

// ------------------------------------------------------------------ tests

TEST(Emulator, IndicesCoverA3DGridOnce) {
  const dim3 grid(3, 2, 2), block(4, 3, 5);
  const int64_t n = 3 * 2 * 2 * 4 * 3 * 5;
  std::vector<int64_t> out(n, -1);
  std::vector<int> hits(n, 0);
  ofa::emu::set_worker_threads(3);
  OFA_LAUNCH(write_ids, grid, block, 0, nullptr)(out.data(), hits.data());
  ofa::emu::set_worker_threads(0);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(out[i], i);
    EXPECT_EQ(hits[i], 1) << i;
  }
}

TEST(Emulator, SyncthreadsOrdersSharedMemory) {
  const int nb = 5, nt = 256;
  std::vector<int> in(nb * nt), out(nb * nt, -1);
  std::iota(in.begin(), in.end(), 7);
  for (auto order : {ofa::emu::Order::Forward, ofa::emu::Order::Reverse}) {
    ofa::emu::set_thread_order(order);
    OFA_LAUNCH(block_reverse, nb, nt, 0, nullptr)(in.data(), out.data(), 1);
    for (int b = 0; b < nb; ++b)
      for (int t = 0; t < nt; ++t) ASSERT_EQ(out[b * nt + t], in[b * nt + nt - 1 - t]);
  }
  ofa::emu::set_thread_order(ofa::emu::Order::Forward);
}

// Without the barrier the reverse reads slots not yet written in this block
// (threads run to their next barrier one after the other): the emulation
// turns the race into a wrong answer instead of hiding it.
TEST(Emulator, MissingSyncthreadsShowsAsWrongResult) {
  const int nb = 2, nt = 256;
  std::vector<int> in(nb * nt), out(nb * nt, -1);
  std::iota(in.begin(), in.end(), 1000);
  OFA_LAUNCH(block_reverse, nb, nt, 0, nullptr)(in.data(), out.data(), 0);
  int wrong = 0;
  for (int b = 0; b < nb; ++b)
    for (int t = 0; t < nt; ++t) wrong += out[b * nt + t] != in[b * nt + nt - 1 - t];
  EXPECT_GT(wrong, 0);
}

TEST(Emulator, ShuffleReductionSumsABlock) {
  const int64_t n = 1000;  // not a multiple of the block: the grid-stride loop's tail
  std::vector<float> in(n);
  for (int64_t i = 0; i < n; ++i) in[i] = float(i % 17);
  std::vector<float> out(3, -1.f);
  OFA_LAUNCH(block_sum, 3, 128, 0, nullptr)(in.data(), n, out.data());
  double total = 0;
  for (float v : in) total += v;
  EXPECT_EQ(double(out[0]) + out[1] + out[2], total);
}

TEST(Emulator, ShuffleSemanticsWithWidth) {
  for (int width : {32, 8}) {
    std::vector<int> out(5 * 32, -1);
    OFA_LAUNCH(shuffle_kinds, 1, 32, 0, nullptr)(out.data(), width);
    for (int l = 0; l < 32; ++l) {
      const int seg = l - l % width;
      EXPECT_EQ(out[0 * 32 + l], 100 + seg + 3) << "shfl w" << width << " lane " << l;
      EXPECT_EQ(out[1 * 32 + l], 100 + (l % width < 2 ? l : l - 2)) << "up w" << width << " lane " << l;
      EXPECT_EQ(out[2 * 32 + l], 100 + (l % width + 2 >= width ? l : l + 2)) << "down w" << width << " lane " << l;
      EXPECT_EQ(out[3 * 32 + l], 100 + (l ^ 1)) << "xor w" << width << " lane " << l;
      EXPECT_EQ(out[4 * 32 + l], l ^ 5) << "xor double lane " << l;
    }
  }
}

TEST(Emulator, SyncthreadsCountAndOr) {
  std::vector<int> out(100, -1);
  OFA_LAUNCH(barrier_votes, 1, 100, 0, nullptr)(out.data());
  for (int t = 0; t < 100; ++t) EXPECT_EQ(out[t], 34 * 1000 + 100 + 10 + 0) << t;
}

TEST(Emulator, BallotAnyAll) {
  std::vector<unsigned> ballot(8, 0);
  std::vector<int> any(4, -1), all(4, -1);
  OFA_LAUNCH(votes, 1, 128, 0, nullptr)(ballot.data(), any.data(), all.data());
  unsigned every_third = 0;
  for (int l = 0; l < 32; l += 3) every_third |= 1u << l;
  for (int w = 0; w < 4; ++w) {
    EXPECT_EQ(ballot[w], every_third);
    EXPECT_EQ(any[w], w == 1 ? 1 : 0);
    EXPECT_EQ(all[w], w == 2 ? 1 : 0);
    EXPECT_EQ(ballot[4 + w], 0x55u);  // even lanes 0, 2, 4, 6
  }
}

TEST(Emulator, AtomicsFromManyParallelBlocks) {
  int ci = 0, mx = -1;
  unsigned long long cu = 0;
  float cf = 0.f;
  double cd = 0.0;
  ofa::emu::set_worker_threads(4);  // blocks really run concurrently
  ofa::emu::reset_stats();
  OFA_LAUNCH(atomics, 64, 256, 0, nullptr)(&ci, &cu, &cf, &cd, &mx);
  ofa::emu::set_worker_threads(0);
  EXPECT_EQ(ci, 64 * 256);
  EXPECT_EQ(cu, 2ull * 64 * 256);
  EXPECT_EQ(cf, 64.f * 256.f);  // exact: integers below 2^24
  EXPECT_EQ(cd, 0.5 * 64 * 256);
  EXPECT_EQ(mx, 64 * 256 - 1);
  EXPECT_EQ(ofa::emu::stats().blocks, 64);
  EXPECT_EQ(ofa::emu::stats().threads, 64 * 256);
}

TEST(Emulator, PartialBarrierIsADeadlockNamingTheKernel) {
  std::vector<int> out(128, 0);
  const std::string m = emu_error_of([&] { OFA_LAUNCH(partial_barrier, 2, 128, 0, nullptr)(out.data()); });
  EXPECT_TRUE(has_part(m, "partial_barrier")) << m;
  EXPECT_TRUE(has_part(m, "deadlock")) << m;
  EXPECT_TRUE(has_part(m, "reached by 100 of 128 threads")) << m;
}

TEST(Emulator, ThreadsExitingBeforeABarrierAreReported) {
  std::vector<int> out(64, 0);
  const std::string m = emu_error_of([&] { OFA_LAUNCH(exit_before_barrier, 1, 64, 0, nullptr)(out.data(), 50); });
  EXPECT_TRUE(has_part(m, "exit_before_barrier")) << m;
  EXPECT_TRUE(has_part(m, "reached by 50 of 64 threads (14 exited")) << m;
  // Every thread reaching it is fine.
  EXPECT_NO_THROW(OFA_LAUNCH(exit_before_barrier, 1, 64, 0, nullptr)(out.data(), 64));
}

TEST(Emulator, DivergentWarpShuffleIsReported) {
  std::vector<int> out(64, 0);
  const std::string m = emu_error_of([&] { OFA_LAUNCH(divergent_shuffle, 1, 64, 0, nullptr)(out.data()); });
  EXPECT_TRUE(has_part(m, "divergent_shuffle")) << m;
  EXPECT_TRUE(has_part(m, "__shfl_sync")) << m;
  EXPECT_TRUE(has_part(m, "lanes {0-15} wait in __shfl_sync(mask 0xffffffff) for lanes {16-31}")) << m;
  const std::string m2 = emu_error_of([&] { OFA_LAUNCH(mask_without_self, 1, 32, 0, nullptr)(out.data()); });
  EXPECT_TRUE(has_part(m2, "excludes the calling lane")) << m2;
}

TEST(Emulator, DynamicSharedMemoryIsPoisonedPerBlockAndLimited) {
  const int n = 64;
  std::vector<float> out(2 * n, 0.f);
  OFA_LAUNCH(dynamic_shared_probe, 1, n, n * sizeof(float), nullptr)(out.data(), n);
  for (int t = 0; t < n; ++t) {
    EXPECT_TRUE(std::isnan(out[t])) << t;
    EXPECT_EQ(out[n + t], float((t + n - 1) % n));
  }
  const std::string m =
      emu_error_of([&] { OFA_LAUNCH(dynamic_shared_probe, 1, n, 48 * 1024 + 4, nullptr)
                         (out.data(), n); });
  EXPECT_TRUE(has_part(m, "dynamic_shared_probe")) << m;
  EXPECT_TRUE(has_part(m, "exceeds the 49152-byte limit")) << m;
}

// Fiber switches keep each thread's registers and stack; the stacks of a
// launch that failed with fibers left mid-kernel serve the next launch.
TEST(Emulator, LiveValuesAndDeepStacksSurviveSwitchesAlsoAfterAFailedLaunch) {
  const int n = 128, rounds = 9;
  std::vector<int64_t> want(n);
  {
    std::vector<int64_t> a(n), b(n), c(n), d(n), e(n), g(n);
    std::vector<double> x(n);
    for (int64_t t = 0; t < n; ++t) {
      a[t] = t, b[t] = 2 * t + 1, c[t] = t * t, d[t] = 7 - t, e[t] = t ^ 5, g[t] = 11 * t;
      x[t] = 0.5 * double(t);
    }
    for (int r = 0; r < rounds; ++r) {
      std::vector<int64_t> g_old = g;
      for (int t = 0; t < n; ++t) {
        a[t] += b[t];
        b[t] ^= c[t];
        c[t] += 3 * d[t];
        d[t] -= a[t];
        e[t] = e[t] * 5 + g_old[t];
        g[t] = g_old[t ^ 1] + r;
        x[t] = 0.5 * x[t] + double(r);
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      int64_t deep = 3 * (t + 24) + 1;
      for (int level = 0; level < 24; ++level) deep += 16 * 16 * (t + level) + 120;
      want[t] = a[t] + 3 * b[t] + 5 * c[t] + 7 * d[t] + 11 * e[t] + 13 * g[t] + static_cast<int64_t>(4 * x[t]) + deep;
    }
  }
  std::vector<int> scratch(n, 0);
  for (int attempt = 0; attempt < 3; ++attempt) {
    // A deadlock leaves 100 fibers suspended in mid-kernel, on the stacks the next launch reuses.
    EXPECT_TRUE(has_part(emu_error_of([&] { OFA_LAUNCH(partial_barrier, 2, n, 0, nullptr)(scratch.data()); }),
                         "deadlock"));
    std::vector<int64_t> out(2 * n, -1);
    OFA_LAUNCH(live_values, 2, n, 0, nullptr)(out.data(), rounds);
    for (int t = 0; t < n; ++t) {
      ASSERT_EQ(out[t], want[t]) << "attempt " << attempt << " block 0 thread " << t;
      ASSERT_EQ(out[n + t], want[t]) << "attempt " << attempt << " block 1 thread " << t;
    }
  }
}

TEST(Emulator, BadLaunchConfigurationsAndKernelErrors) {
  std::vector<int> out(2048, 0);
  EXPECT_TRUE(
      has_part(emu_error_of([&] { OFA_LAUNCH(partial_barrier, 1, 2048, 0, nullptr)
                                  (out.data()); }), "invalid block"));
  EXPECT_TRUE(has_part(emu_error_of([&] { OFA_LAUNCH(partial_barrier, dim3(1, 0, 1), 32, 0, nullptr)
                                          (out.data()); }),
                       "invalid grid"));
  const std::string m = emu_error_of([&] { OFA_LAUNCH(throws_inside, 1, 32, 0, nullptr)(out.data()); });
  EXPECT_TRUE(has_part(m, "emulated kernel 'throws_inside' block (0,0,0) thread (5,0,0): thread 5 refuses")) << m;
  EXPECT_TRUE(has_part(emu_error_of([] { return threadIdx.x; }), "outside an emulated kernel"));
}

}  // namespace
