// The CPU kernels' thread count: OpenMP's pool and OpenBLAS's (its OpenMP
// build follows omp_set_num_threads; a pthread build needs its own call).
#pragma once
#include <cstdint>

namespace ofa {

void set_compute_threads(int64_t n);  // n > 0; n <= 0 leaves the runtime's default

}  // namespace ofa
