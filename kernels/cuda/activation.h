#pragma once
// CUDA activation launchers (declared without CUDA headers).
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cuda {

void activation_forward(math::Activation kind, DType dtype, const void* x, void* y, int64_t n, StreamHandle stream);
void activation_backward(math::Activation kind, DType dtype, const void* x, const void* dy, void* dx, int64_t n,
                         StreamHandle stream);

}  // namespace sg::cuda
