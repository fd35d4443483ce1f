#pragma once
// Fast CPU losses (OpenMP over rows / elements, double accumulation of the reduced loss).
// Shapes as in kernels/loss.h; targets are checked by the caller.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/loss_math.h"

namespace sg::cpu {

void cross_entropy_forward(DType dtype, const void* logits, const int32_t* targets, float* loss, int64_t N, int64_t C,
                           math::Reduction reduction, float label_smoothing);
void cross_entropy_backward(DType dtype, const void* logits, const int32_t* targets, void* dlogits, int64_t N,
                            int64_t C, math::Reduction reduction, float label_smoothing, float grad_scale);
void pointwise_loss_forward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, float* loss,
                            int64_t n, math::Reduction reduction, float beta);
void pointwise_loss_backward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, void* dx, int64_t n,
                             math::Reduction reduction, float beta, float grad_scale);

}  // namespace sg::cpu
