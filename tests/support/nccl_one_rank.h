// The checks of an NCCL communicator of world size 1, shared by its two
// set-ups (tests/cuda/test_nccl_single_process.cpp without MPI,
// tests/mpi/test_nccl_communicator.cpp bootstrapped over MPI): with one rank
// every collective is the identity (allgather a copy), so the data must come
// back bit for bit through NCCL's path, for F32, F64 and I64 and odd sizes,
// blocking and asynchronous (handles waited in reverse order), and the host
// reductions must leave the values. Needs a GPU (the caller checks).
#pragma once
#ifdef OFA_WITH_CUDA
#include <gtest/gtest.h>

#include <vector>

#include "distributed/nccl_communicator.h"
#include "tests/support/test_util.h"

namespace ofa::test {

// i % 251 - 100 as dtype dt: exact in every dtype, with repeats and signs.
inline Tensor nccl_ramp(DType dt, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i % 251) - 100.0;
  return from_vector<double>(v, {n}).to(dt);
}

inline void expect_one_rank_collectives(dist::NcclCommunicator& c) {
  ASSERT_EQ(c.world_size(), 1);
  const Device gpu = c.device();
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    for (int64_t n : {1, 7, 100003}) {
      const Tensor want = nccl_ramp(dt, n);
      for (dist::ReduceOp op : {dist::ReduceOp::Sum, dist::ReduceOp::Average, dist::ReduceOp::Max}) {
        if (dt == DType::I64 && op == dist::ReduceOp::Average) continue;
        Tensor t = want.to(gpu);
        c.allreduce(t, op);
        EXPECT_TRUE(all_close(t.to(Device::cpu()), want, 0, 0))
            << dist::reduce_op_name(op) << " " << dtype_name(dt) << " n " << n;
      }
      Tensor b = want.to(gpu);
      c.broadcast(b, 0);
      EXPECT_TRUE(all_close(b.to(Device::cpu()), want, 0, 0)) << "broadcast " << dtype_name(dt) << " n " << n;
      Tensor g = c.allgather(want.to(gpu));
      EXPECT_EQ(g.shape(), (Shape{1, n}));
      EXPECT_TRUE(all_close(g.to(Device::cpu()).reshape({n}), want, 0, 0)) << "allgather " << dtype_name(dt) << " n " << n;
    }
  }
  Tensor a = nccl_ramp(DType::F32, 1023).to(gpu), d = nccl_ramp(DType::F32, 17).to(gpu);
  auto wa = c.allreduce_async(a, dist::ReduceOp::Sum);
  auto wd = c.allreduce_async(d, dist::ReduceOp::Sum);
  wd->wait();
  wa->wait();
  EXPECT_TRUE(all_close(a.to(Device::cpu()), nccl_ramp(DType::F32, 1023), 0, 0));
  EXPECT_TRUE(all_close(d.to(Device::cpu()), nccl_ramp(DType::F32, 17), 0, 0));
  c.synchronize();
  EXPECT_TRUE(wa->test());
  std::vector<double> host = {1.5, -2.0};
  c.allreduce_sum(host);
  EXPECT_EQ(host, (std::vector<double>{1.5, -2.0}));
  EXPECT_TRUE(c.any(true));
  EXPECT_FALSE(c.any(false));
  c.barrier();
}

}  // namespace ofa::test
#endif  // OFA_WITH_CUDA
