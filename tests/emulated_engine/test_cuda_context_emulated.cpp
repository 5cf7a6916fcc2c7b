// The engine's CUDA side (engine/cuda_context, storage, the tensor basics)
// on the emulated backend: CUDA tensors whose kernels run on the CPU
// emulation. Caching allocator statistics and reuse, out-of-memory handling,
// poisoning of fresh memory, pinned host memory and non-blocking copies,
// the device error record, and fill_ / copy_ / add_ / mul_ through strides
// against the same calls on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/cuda_context.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "tests/support/emulated_cuda_env.h"
#include "tests/support/test_util.h"

namespace {

using namespace ofa;
using ofa::test::randn_t;

const Device kCuda = Device::cuda(0);

TEST(CudaContextEmulated, TheEmulatedBackendIsTheCudaDevice) {
  EXPECT_TRUE(cuda_available());
  EXPECT_EQ(cuda_device_count(), 1);
  EXPECT_TRUE(cuda_emulated());
  EXPECT_NE(cuda_backend().name().find("emulated"), std::string::npos);
  // Choosing again the same way is fine; the other way is refused, naming the backend.
  set_cuda_emulation(true);
  try {
    set_cuda_emulation(false);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
  }
  try {
    empty({2}, DType::F32, Device::cuda(3));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA device 3 does not exist (1 visible"), std::string::npos) << e.what();
  }
}

TEST(CudaContextEmulated, RoundTripAndPoisonedFreshMemory) {
  Tensor h = randn_t({3, 5, 7}, 1, DType::F32);
  Tensor d = h.to(kCuda);
  EXPECT_EQ(d.device(), kCuda);
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), h.to_vector<float>());
  // Fresh device memory reads as NaN (OFA_CUDA_POISON=1), so unwritten outputs show.
  for (float v : empty({33}, DType::F32, kCuda).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
}

TEST(CudaContextEmulated, InPlaceOpsThroughStridesMatchTheCpu) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = randn_t({4, 6, 5}, 2, dt), b = randn_t({6, 5}, 3, dt);
    Tensor da = a.to(kCuda), db = b.to(kCuda);
    // Views: a transposed slice, a broadcast operand.
    a.permute({2, 0, 1}).narrow(2, 1, 4).add_(b.transpose(0, 1).narrow(1, 1, 4).unsqueeze(1), -0.5);
    da.permute({2, 0, 1}).narrow(2, 1, 4).add_(db.transpose(0, 1).narrow(1, 1, 4).unsqueeze(1), -0.5);
    a.narrow(0, 1, 2).mul_(3.0);
    da.narrow(0, 1, 2).mul_(3.0);
    a.select(2, 4).fill_(7.0);
    da.select(2, 4).fill_(7.0);
    EXPECT_EQ(da.to(Device::cpu()).to_vector<double>(), a.to_vector<double>()) << dtype_name(dt);
    // copy_ with conversion from a transposed source.
    Tensor c = empty({5, 4}, DType::F64, kCuda);
    c.copy_(da.select(1, 2).transpose(0, 1));
    EXPECT_EQ(c.to(Device::cpu()).to_vector<double>(), a.select(1, 2).transpose(0, 1).to(DType::F64).contiguous().to_vector<double>());
  }
}

TEST(CudaContextEmulated, CachingAllocatorReusesBlocksAndCounts) {
  cuda_empty_cache(0);
  const CudaMemoryStats s0 = cuda_memory_stats(0);
  const size_t bytes = size_t(3) << 20;  // 3 MiB: rounds to its size class (4 MiB)
  {
    Tensor t = empty({int64_t(bytes / 4)}, DType::F32, kCuda);
    const CudaMemoryStats s1 = cuda_memory_stats(0);
    EXPECT_EQ(s1.allocated - s0.allocated, size_t(4) << 20);
    EXPECT_EQ(s1.reserved - s0.reserved, size_t(4) << 20);
    EXPECT_EQ(s1.device_mallocs, s0.device_mallocs + 1);
    EXPECT_GE(s1.peak_allocated, s1.allocated);
  }
  const CudaMemoryStats s2 = cuda_memory_stats(0);
  EXPECT_EQ(s2.allocated, s0.allocated);          // given back
  EXPECT_EQ(s2.reserved - s0.reserved, size_t(4) << 20);  // but kept
  {
    // A slightly different size of the same class: served from the cache, no device call.
    Tensor t = empty({int64_t(bytes / 4) + 1000}, DType::F32, kCuda);
    const CudaMemoryStats s3 = cuda_memory_stats(0);
    EXPECT_EQ(s3.device_mallocs, s2.device_mallocs);
    EXPECT_EQ(s3.cache_hits, s2.cache_hits + 1);
  }
  cuda_empty_cache(0);
  const CudaMemoryStats s4 = cuda_memory_stats(0);
  EXPECT_EQ(s4.reserved, s4.allocated);
  EXPECT_EQ(s4.device_frees, s2.device_frees + 1);
}

TEST(CudaContextEmulated, BlocksUsedOnAnotherStreamComeBackAfterItsWork) {
  cuda_empty_cache(0);
  kernels::Stream side = cuda_backend().stream_create();
  const CudaMemoryStats s0 = cuda_memory_stats(0);
  {
    Tensor t = empty({1 << 20}, DType::F32, kCuda);
    cuda_record_stream(0, t.raw_data(), side);
  }
  // The emulated streams finish at once, so the block is free again at the next allocation.
  { Tensor t = empty({1 << 20}, DType::F32, kCuda); }
  const CudaMemoryStats s1 = cuda_memory_stats(0);
  EXPECT_EQ(s1.device_mallocs, s0.device_mallocs + 1);
  EXPECT_EQ(s1.cache_hits, s0.cache_hits + 1);
  cuda_backend().stream_destroy(side);
  Tensor t = empty({8}, DType::F32, kCuda);
  try {
    cuda_record_stream(0, static_cast<char*>(t.raw_data()) + 4, cuda_stream(0));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("base pointer"), std::string::npos) << e.what();
  }
}

TEST(CudaContextEmulated, OutOfMemoryNamesTheSizesAndTheRemedy) {
  try {
    empty({int64_t(1) << 50}, DType::F32, kCuda);  // 4 PiB
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("CUDA out of memory on cuda:0 allocating"), std::string::npos) << m;
    EXPECT_NE(m.find("reduce the batch size"), std::string::npos) << m;
  }
  // The allocator still works afterwards.
  EXPECT_EQ(zeros({3}, DType::F32, kCuda).to_vector<float>(), std::vector<float>(3, 0.f));
}

TEST(CudaContextEmulated, PinnedMemoryAndNonBlockingCopies) {
  Tensor p = empty_pinned({6, 7});
  EXPECT_TRUE(p.is_pinned());
  EXPECT_TRUE(p.narrow(0, 2, 3).is_pinned());
  EXPECT_FALSE(empty({6, 7}).is_pinned());
  p.copy_(randn_t({6, 7}, 4, DType::F32));
  Tensor d = p.to(kCuda, /*non_blocking=*/true);
  Tensor d2 = empty({6, 7}).copy_(p).to(kCuda, true);  // pageable: a plain copy
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), p.to_vector<float>());
  EXPECT_EQ(d2.to(Device::cpu()).to_vector<float>(), p.to_vector<float>());
}

TEST(CudaContextEmulated, DeviceErrorRecordSurfacesAtTheNextReadBack) {
  kernels::DeviceError e{kernels::kErrTarget, 0, 12, 3, 10};
  cuda_backend().memcpy_async(cuda_error_record(0), &e, sizeof(e), kernels::CopyKind::HostToDevice, cuda_stream(0));
  Tensor t = zeros({2}, DType::F32, kCuda);
  try {
    t.to(Device::cpu());
    ADD_FAILURE() << "no error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("cross_entropy: target 12 of row 3 outside [0, 10) (cuda:0)"),
              std::string::npos)
        << err.what();
  }
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), std::vector<float>(2, 0.f));  // cleared
}

}  // namespace
