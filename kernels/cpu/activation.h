#pragma once
// Fast CPU activations (OpenMP over cores, loops the compiler vectorises).
#include <cstdint>

#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {

void activation_forward(math::Activation kind, DType dtype, const void* x, void* y, int64_t n);
void activation_backward(math::Activation kind, DType dtype, const void* x, const void* dy, void* dx, int64_t n);

}  // namespace sg::cpu
