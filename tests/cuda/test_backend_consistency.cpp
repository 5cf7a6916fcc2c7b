// CPU-vs-CUDA: every op on fresh random inputs, the CUDA outputs poisoned
// first so unwritten elements show, forward and backward compared with the
// CPU reference. Skipped, visibly, where no GPU is present.
#include <functional>
#include <map>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

struct OpCase {
  std::string name;
  std::vector<Shape> input_shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  double atol = 1e-5, rtol = 1e-4;
};

std::vector<OpCase> cases() {
  const MemoryFormat CL = MemoryFormat::ChannelsLast;
  std::vector<OpCase> c = {
      {"relu", {{3, 13, 7, 7}}, [](auto& in) { return relu(in[0]); }},
      {"relu6", {{3, 13, 7, 7}}, [](auto& in) { return relu6(mul(in[0], 4.0)); }},
      {"hswish", {{3, 13, 7, 7}}, [](auto& in) { return hswish(mul(in[0], 4.0)); }},
      {"hsigmoid", {{3, 13, 7, 7}}, [](auto& in) { return hsigmoid(mul(in[0], 4.0)); }},
      {"add_broadcast", {{3, 13, 7, 7}, {13, 1, 1}}, [](auto& in) { return add(in[0], in[1]); }},
      {"sub", {{3, 13}, {3, 13}}, [](auto& in) { return sub(in[0], in[1]); }},
      {"mul_se", {{3, 13, 7, 7}, {3, 13, 1, 1}}, [=](auto& in) { return mul(in[0].contiguous(CL), in[1]); }},
      {"sum_dims", {{3, 13, 7, 7}}, [](auto& in) { return sum(in[0], {0, 2, 3}); }},
      {"mean", {{3, 13, 7, 7}}, [](auto& in) { return mean(in[0]); }},
  };
  return c;
}

class CpuVsCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuVsCuda, ForwardAndBackwardMatch) {
  OFA_REQUIRE_CUDA();
  OpCase oc;
  for (auto& c : cases())
    if (c.name == GetParam()) oc = c;
  std::vector<Tensor> cpu_in, gpu_in;
  uint64_t seed = 100;
  for (const Shape& s : oc.input_shapes) {
    Tensor x = randn_t(s, seed++, DType::F32);
    cpu_in.push_back(x.detach().set_requires_grad(true));
    gpu_in.push_back(x.to(Device::cuda()).set_requires_grad(true));
  }
  Tensor y_cpu = oc.fn(cpu_in);
  Tensor y_gpu = oc.fn(gpu_in);
  ASSERT_TRUE(y_gpu.device().is_cuda());
  EXPECT_TRUE(all_close(y_gpu.to(Device::cpu()), y_cpu, oc.atol, oc.rtol)) << oc.name << " forward";
  Tensor r = randn_t(y_cpu.shape(), 7, DType::F32);
  sum(mul(y_cpu, r)).backward();
  sum(mul(y_gpu, r.to(Device::cuda()))).backward();
  for (size_t i = 0; i < cpu_in.size(); ++i)
    EXPECT_TRUE(all_close(gpu_in[i].grad().to(Device::cpu()), cpu_in[i].grad(), oc.atol, oc.rtol))
        << oc.name << " gradient of input " << i;
}

std::vector<std::string> case_names() {
  std::vector<std::string> n;
  for (auto& c : cases()) n.push_back(c.name);
  return n;
}

INSTANTIATE_TEST_SUITE_P(Ops, CpuVsCuda, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
