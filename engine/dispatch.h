// The two switches every op goes through: element type, then device.
#pragma once
#include "engine/common.h"

// Calls the lambda __VA_ARGS__ with `scalar_t` bound to the C++ type of DT.
#define OFA_DISPATCH_FLOATING(DT, NAME, ...)                                                         \
  [&] {                                                                                              \
    switch (DT) {                                                                                    \
      case ::ofa::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }                      \
      case ::ofa::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }                     \
      default:                                                                                       \
        throw ::ofa::Error(::ofa::str_cat(NAME, ": dtype ", ::ofa::dtype_name(DT),                   \
                                          " is not supported here (float32 or float64)"));           \
    }                                                                                                \
  }()

#define OFA_DISPATCH_ALL(DT, NAME, ...)                                                              \
  [&] {                                                                                              \
    switch (DT) {                                                                                    \
      case ::ofa::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }                      \
      case ::ofa::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }                     \
      case ::ofa::DType::I64: { using scalar_t = int64_t; return __VA_ARGS__(); }                    \
      default:                                                                                       \
        throw ::ofa::Error(::ofa::str_cat(NAME, ": dtype ", ::ofa::dtype_name(DT),                   \
                                          " is not supported here"));                                \
    }                                                                                                \
  }()

// The device half: ops call the CPU kernel for CPU tensors and fall into this
// for CUDA tensors until the op's CUDA kernel exists.
#define OFA_NO_CUDA_KERNEL(NAME)                                                                     \
  throw ::ofa::Error(::ofa::str_cat(NAME, ": no CUDA kernel for this op yet; move the tensors to the CPU"))

// Every op checks that its inputs share one device.
#define OFA_CHECK_SAME_DEVICE(NAME, A, B)                                                            \
  OFA_CHECK((A).device() == (B).device(), NAME, ": tensors on different devices (",                 \
            (A).device().str(), " and ", (B).device().str(), ")")
