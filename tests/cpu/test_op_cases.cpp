// Runs the backend-consistency table (tests/support/op_cases.h) on the CPU:
// every case in float32 against float64 on the same values, forward and
// gradients. This keeps the table that the CUDA tests use valid on machines
// without a GPU, and checks that float32 loses no more than float32 should.
#include "tests/support/op_cases.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

class OpCaseFloat32VsFloat64 : public ::testing::TestWithParam<std::string> {};

TEST_P(OpCaseFloat32VsFloat64, ForwardAndBackwardAgree) {
  OpCase oc = find_op_case(GetParam());
  std::vector<Tensor> in32, in64;
  uint64_t seed = 100;
  for (const Shape& s : oc.input_shapes) {
    Tensor x = randn_t(s, seed++, DType::F64);
    in64.push_back(x.detach().set_requires_grad(oc.differentiable));
    in32.push_back(x.to(DType::F32).set_requires_grad(oc.differentiable));
  }
  Tensor y64 = oc.fn(in64), y32 = oc.fn(in32);
  ASSERT_EQ(y32.shape(), y64.shape());
  EXPECT_TRUE(all_close(y32, y64, oc.atol, oc.rtol)) << oc.name << " forward";
  if (!oc.differentiable) return;
  Tensor r = randn_t(y64.shape(), 7, DType::F64);
  sum(mul(y64, r)).backward();
  sum(mul(y32, r.to(DType::F32))).backward();
  for (size_t i = 0; i < in64.size(); ++i) {
    ASSERT_TRUE(in32[i].grad().defined()) << oc.name << ": input " << i << " got no gradient";
    EXPECT_TRUE(all_close(in32[i].grad(), in64[i].grad(), oc.atol, oc.rtol)) << oc.name << " gradient of input " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpCaseFloat32VsFloat64, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
