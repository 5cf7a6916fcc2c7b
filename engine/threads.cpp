#include "engine/threads.h"

#include <cblas.h>
#include <omp.h>

namespace ofa {

void set_compute_threads(int64_t n) {
  if (n <= 0) return;
  omp_set_num_threads(static_cast<int>(n));
  openblas_set_num_threads(static_cast<int>(n));
}

}  // namespace ofa
