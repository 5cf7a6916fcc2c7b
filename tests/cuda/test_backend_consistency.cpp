// CPU-vs-CUDA: every op of tests/support/op_cases.h on fresh random inputs,
// forward and backward compared with the CPU reference. Skipped, visibly,
// where no GPU is present. (Poisoning fresh device memory, so that unwritten
// output elements show as NaN, is the CUDA allocator's job in its debug mode.)
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

}  // namespace
