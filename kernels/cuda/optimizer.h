#pragma once
// CUDA optimizer launchers (declared without CUDA headers). Shapes as in kernels/optimizer.h.
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/optimizer_math.h"

namespace sg::cuda {

void sgd_step(const SgdParams& p, DType grad_dtype, float* param, const void* grad, float* momentum_buffer,
              bool first_step, int64_t n, StreamHandle stream);
void adamw_step(const AdamWParams& p, int64_t step, DType grad_dtype, float* param, const void* grad, float* exp_avg,
                float* exp_avg_sq, int64_t n, StreamHandle stream);

// Gradient-norm clipping in three launches per call, deterministic:
// 1. per tensor, sum_of_squares_partials writes sum_of_squares_blocks(n) block sums;
// 2. finish_grad_norm adds every partial in a fixed order (double) and writes
//    norm_and_coef[0] = norm, norm_and_coef[1] = max_norm / (norm + 1e-6);
// 3. per tensor, scale_if_below_one multiplies by norm_and_coef[1] when it is below 1 (read
//    on the device: no host round trip between the passes).
int64_t sum_of_squares_blocks(int64_t n);
void sum_of_squares_partials(DType dtype, const void* x, int64_t n, float* partials, StreamHandle stream);
void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm_and_coef, StreamHandle stream);
void scale_if_below_one(DType dtype, void* x, int64_t n, const float* coef, StreamHandle stream);

// x *= inv_scale (no writes when inv_scale is 1: a check only); *found_inf = 1 when any
// element is inf or NaN (plain stores of the same value, so the result does not depend on which
// block writes).
void non_finite_check_and_unscale(DType dtype, void* x, int64_t n, float inv_scale, float* found_inf,
                                  StreamHandle stream);

}  // namespace sg::cuda
