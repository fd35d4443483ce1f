#pragma once
// Fast CPU bias + activation on [M, C] rows (OpenMP over fixed row chunks, f32 arithmetic).
#include <cstdint>

#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {

void bias_activation_forward(math::Activation act, DType dtype, const void* x, const float* bias, void* y, int64_t M,
                             int64_t C);
void bias_activation_backward(math::Activation act, DType dtype, const void* x, const float* bias, const void* dy,
                              void* dx, float* dbias, int64_t M, int64_t C);

}  // namespace sg::cpu
