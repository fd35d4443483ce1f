#pragma once
// Fast CPU optimizer updates (OpenMP, vectorised loops). params and state f32; gradients in
// `grad_dtype` (f32, f16 or bf16), converted on load.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/optimizer_math.h"

namespace sg::cpu {

void sgd_step(const SgdParams& p, DType grad_dtype, float* param, const void* grad, float* momentum_buffer,
              bool first_step, int64_t n);
void adamw_step(const AdamWParams& p, int64_t step, DType grad_dtype, float* param, const void* grad, float* exp_avg,
                float* exp_avg_sq, int64_t n);
// Sum of squares of one gradient tensor, in double.
double sum_of_squares(DType dtype, const void* x, int64_t n);
// x *= factor
void scale(DType dtype, void* x, int64_t n, float factor);
// x *= inv_scale; returns true when any element was inf or NaN.
bool non_finite_check_and_unscale(DType dtype, void* x, int64_t n, float inv_scale);

}  // namespace sg::cpu
