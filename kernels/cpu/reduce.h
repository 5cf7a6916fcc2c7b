// defines: reduce_sum (sums the `red` dims of a strided input into a dense
// output, one output element per combination of the `keep` dims)
#pragma once
#include <cstdint>
#include <vector>

namespace ofa::kernels::cpu {
// out[o] = scale * sum over the reduced index space, where o runs row-major
// over keep_shape. Accumulates in double; each output is summed in a fixed
// order by one thread, so results do not depend on the thread count.
template <class T>
void reduce_sum(const T* in, const std::vector<int64_t>& keep_shape, const std::vector<int64_t>& keep_strides,
                const std::vector<int64_t>& red_shape, const std::vector<int64_t>& red_strides, T* out,
                double scale);
}  // namespace ofa::kernels::cpu
