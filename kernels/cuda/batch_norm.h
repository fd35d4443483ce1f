#pragma once
// CUDA batch norm (+ fused activation) launchers (declared without CUDA headers). Same
// arguments as the CPU fast path in kernels/cpu/batch_norm.h, plus the stream.
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cuda {

void batch_norm_forward_train(DType dtype, const void* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, void* y, float* saved_mean, float* saved_invstd, int64_t M,
                              int64_t C, double eps, double momentum, math::Activation act, StreamHandle stream);

void batch_norm_forward_eval(DType dtype, const void* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, void* y, int64_t M, int64_t C,
                             double eps, math::Activation act, StreamHandle stream);

void batch_norm_backward(DType dtype, const void* x, const void* dy, const float* gamma, const float* beta,
                         const float* mean_or_running_mean, const float* invstd_or_running_var, bool training,
                         double eps, void* dx, float* dgamma, float* dbeta, int64_t M, int64_t C,
                         math::Activation act, StreamHandle stream);

}  // namespace sg::cuda
