#pragma once
// Fast CPU convolution. Dense, pointwise and grouped convolutions are implicit GEMMs on
// OpenBLAS (im2col in bounded chunks of output rows; a 1x1 stride-1 convolution needs none);
// depthwise convolutions (groups == Cin == Cout) are direct NHWC loops vectorised over
// channels. f16/bf16 are converted to f32 in scratch buffers; accumulation is f32.
// Same layouts and semantics as kernels/conv2d.h; pointers are host pointers of `dtype`.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/conv2d_params.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {

// Bound on the scratch memory of one call: im2col columns and f32 copies of 16-bit data are
// made per chunk of output rows (at least one row) or per block of images (at least one image).
// Tests pass a tiny bound to exercise the chunking on small shapes.
inline constexpr int64_t kConv2dScratchBytes = int64_t(64) << 20;

void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                    const void* bias, void* y, int64_t scratch_bytes = kConv2dScratchBytes);
void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy, const void* w,
                           void* dx, int64_t scratch_bytes = kConv2dScratchBytes);
void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* dy,
                            void* dw, void* dbias, int64_t scratch_bytes = kConv2dScratchBytes);

// Inference: y = act(conv2d(x, w) + bias), bias f32 [Cout] or null. Depthwise convolutions add the bias and
// apply the activation to each output pixel while it is in L1 (one pass over y); the others run
// the GEMM, then one bias + activation pass (kernels/cpu/bias_activation.h).
void conv2d_bias_activation_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                    const void* w, const float* bias, math::Activation act, void* y,
                                    int64_t scratch_bytes = kConv2dScratchBytes);

// Inference, squeeze-excite gate + 1x1 convolution: y[n] = act((x[n] * gate[n]) w^T + bias), x [N, H, W, Cin],
// gate [N, Cin] (x's dtype), w [Cout, 1, 1, Cin], bias f32 [Cout] or null, y [N, H, W, Cout]. The gate
// scales a per-image copy of the weights, so x * gate is never written.
void pointwise_gated_forward(int64_t n, int64_t hw, int64_t c_in, int64_t c_out, DType dtype, const void* x,
                             const void* gate, const void* w, const float* bias, math::Activation act, void* y);

}  // namespace sg::cpu
