#pragma once
// CUDA loss launchers (declared without CUDA headers). Shapes as in kernels/loss.h. Reduced
// losses are summed by one block in a fixed order (deterministic, no atomics): the losses here
// are over [batch, classes] heads, far too small for a grid-wide reduction to pay off.
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/loss_math.h"

namespace sg::cuda {

void cross_entropy_forward(DType dtype, const void* logits, const int32_t* targets, float* loss, int64_t N, int64_t C,
                           math::Reduction reduction, float label_smoothing, StreamHandle stream);
void cross_entropy_backward(DType dtype, const void* logits, const int32_t* targets, void* dlogits, int64_t N,
                            int64_t C, math::Reduction reduction, float label_smoothing, float grad_scale,
                            StreamHandle stream);
void pointwise_loss_forward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, float* loss,
                            int64_t n, math::Reduction reduction, float beta, StreamHandle stream);
void pointwise_loss_backward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, void* dx, int64_t n,
                             math::Reduction reduction, float beta, float grad_scale, StreamHandle stream);

}  // namespace sg::cuda
