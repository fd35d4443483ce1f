#pragma once
// CUDA bias + activation launchers (declared without CUDA headers).
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cuda {

void bias_activation_forward(math::Activation act, DType dtype, const void* x, const float* bias, void* y, int64_t M,
                             int64_t C, StreamHandle stream);
void bias_activation_backward(math::Activation act, DType dtype, const void* x, const float* bias, const void* dy,
                              void* dx, float* dbias, int64_t M, int64_t C, StreamHandle stream);

}  // namespace sg::cuda
