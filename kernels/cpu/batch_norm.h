#pragma once
// Fast CPU batch norm (+ fused activation) on [M, C] rows (NHWC flattened): OpenMP over
// fixed chunks of rows (so results do not depend on the thread count), loops over the
// contiguous channels that the compiler vectorises, f32 arithmetic, f16/bf16 rows converted
// to f32 in a per-thread scratch row.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {

void batch_norm_forward_train(DType dtype, const void* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, void* y, float* saved_mean, float* saved_invstd, int64_t M,
                              int64_t C, double eps, double momentum, math::Activation act);

void batch_norm_forward_eval(DType dtype, const void* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, void* y, int64_t M, int64_t C,
                             double eps, math::Activation act);

// training: mean_or_running_mean / invstd_or_running_var are saved_mean and saved_invstd;
// evaluation: running_mean and running_var (invstd = 1 / sqrt(running_var + eps)).
void batch_norm_backward(DType dtype, const void* x, const void* dy, const float* gamma, const float* beta,
                         const float* mean_or_running_mean, const float* invstd_or_running_var, bool training,
                         double eps, void* dx, float* dgamma, float* dbeta, int64_t M, int64_t C,
                         math::Activation act);

}  // namespace sg::cpu
