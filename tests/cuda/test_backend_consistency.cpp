// CPU-vs-CUDA: every op of tests/support/op_cases.h on fresh random inputs,
// forward and backward compared with the CPU reference. Skipped, visibly,
// where no GPU is present. (Poisoning fresh device memory, so that unwritten
// output elements show as NaN, is the CUDA allocator's job in its debug mode.)
#include <thread>

#include "engine/cuda_context.h"
#include "tests/support/op_cases.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

class CpuVsCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuVsCuda, ForwardAndBackwardMatch) {
  OFA_REQUIRE_CUDA();
  OpCase oc = find_op_case(GetParam());
  std::vector<Tensor> cpu_in, gpu_in;
  uint64_t seed = 100;
  for (const Shape& s : oc.input_shapes) {
    Tensor x = randn_t(s, seed++, DType::F32);
    cpu_in.push_back(x.detach().set_requires_grad(oc.differentiable));
    gpu_in.push_back(x.to(Device::cuda()).set_requires_grad(oc.differentiable));
  }
  Tensor y_cpu = oc.fn(cpu_in);
  Tensor y_gpu = oc.fn(gpu_in);
  ASSERT_TRUE(y_gpu.device().is_cuda());
  EXPECT_TRUE(all_close(y_gpu.to(Device::cpu()), y_cpu, oc.atol, oc.rtol)) << oc.name << " forward";
  if (!oc.differentiable) return;
  Tensor r = randn_t(y_cpu.shape(), 7, DType::F32);
  sum(mul(y_cpu, r)).backward();
  sum(mul(y_gpu, r.to(Device::cuda()))).backward();
  for (size_t i = 0; i < cpu_in.size(); ++i)
    EXPECT_TRUE(all_close(gpu_in[i].grad().to(Device::cpu()), cpu_in[i].grad(), oc.atol, oc.rtol))
        << oc.name << " gradient of input " << i;
}

INSTANTIATE_TEST_SUITE_P(Ops, CpuVsCuda, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// A thread the engine never gave a device (a data-loader worker pinning a
// batch) makes its CUDA calls on the device the engine uses, not on the
// runtime's default 0: with one rank per GPU, each rank would otherwise open
// a context on GPU 0. Device 0 is every fresh thread's default, so only a
// second device can tell.
TEST(CudaThreads, AWorkerThreadPinningMemoryUsesTheEnginesDevice) {
  OFA_REQUIRE_CUDA();
  if (cuda_device_count() < 2) GTEST_SKIP() << "SKIPPED: needs two CUDA devices (this machine has " << cuda_device_count() << ")";
  const Tensor on1 = randn_t({8}, 3, DType::F32).to(Device::cuda(1));  // the engine makes cuda:1 current
  int seen = -1;
  std::thread([&] {
    Tensor pinned = empty_pinned({1024});
    ASSERT_TRUE(cuda_is_pinned(pinned.data<float>()));
    seen = cuda_backend().current_device();
  }).join();
  EXPECT_EQ(seen, 1);
}

}  // namespace
