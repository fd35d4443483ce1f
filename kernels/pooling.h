#pragma once
// Pooling, NHWC, f32/f16/bf16 storage with f32 accumulation:
//   max / average pooling 2-D (kernels/pooling_params.h has the geometry),
//   global average / max pooling [N, H, W, C] -> [N, C],
//   GeM pooling y[n,c] = (mean_hw clamp(x, eps)^p)^(1/p) with a learnable f32 p [1].
// Every output is overwritten, never accumulated into. Backward passes are deterministic
// (gather form, fixed reduction order). Errors name the op and the shapes.
#include "core/tensor.h"
#include "kernels/pooling_params.h"

namespace sg {

// The geometry of a call, checked: throws naming the op, the shape and the parameters.
Pool2dShape pool2d_shape(const char* op, const Pool2dParams& p, const Shape& x);

// y [N, Ho, Wo, C]; argmax (nullptr to skip) [N, Ho, Wo, C] i32 = ih * W + iw of the winner
// (ties: the first in scan order; padded cells never win).
void max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, Tensor* argmax, const Stream& stream = {});
// dx [N, H, W, C]: each dy goes to its window's argmax (from max_pool2d_forward).
void max_pool2d_backward(const Pool2dParams& p, const Tensor& argmax, const Tensor& dy, Tensor& dx,
                         const Stream& stream = {});

void avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, const Stream& stream = {});
void avg_pool2d_backward(const Pool2dParams& p, const Tensor& dy, Tensor& dx, const Stream& stream = {});

// x [N, H, W, C] -> y [N, C]; backward dx = dy / (H * W).
void global_avg_pool_forward(const Tensor& x, Tensor& y, const Stream& stream = {});
void global_avg_pool_backward(const Tensor& dy, Tensor& dx, const Stream& stream = {});

// x [N, H, W, C] -> y [N, C], argmax [N, C] i32 = h * W + w (nullptr to skip; ties: first).
void global_max_pool_forward(const Tensor& x, Tensor& y, Tensor* argmax, const Stream& stream = {});
void global_max_pool_backward(const Tensor& argmax, const Tensor& dy, Tensor& dx, const Stream& stream = {});

// GeM: x [N, H, W, C], p [1] f32 (on x's device; read there, no host sync), y [N, C].
inline constexpr float kGemDefaultEps = 1e-6f;
void gem_pool_forward(const Tensor& x, const Tensor& p, Tensor& y, float eps = kGemDefaultEps,
                      const Stream& stream = {});
// dx [N, H, W, C] and dp [1] f32 (overwritten with the gradient summed over N and C).
// The f32 workspace the CUDA gem_pool_backward takes: one contribution to dp per (n, c), summed
// in a fixed order by a second kernel. One definition for the launcher and the memory plan.
inline int64_t cuda_gem_pool_backward_workspace_floats(int64_t n, int64_t c) { return n * c > 1 ? n * c : 1; }

void gem_pool_backward(const Tensor& x, const Tensor& p, const Tensor& dy, Tensor& dx, Tensor& dp,
                       float eps = kGemDefaultEps, const Stream& stream = {});

}  // namespace sg
