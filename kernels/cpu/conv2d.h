#pragma once
// Fast CPU convolution. Dense, pointwise and grouped convolutions are implicit GEMMs on
// OpenBLAS (im2col in bounded chunks of output rows; a 1x1 stride-1 convolution needs none);
// depthwise convolutions (groups == Cin == Cout) are direct NHWC loops vectorised over
// channels. f16/bf16 are converted to f32 in scratch buffers; accumulation is f32.
// Same layouts and semantics as kernels/conv2d.h; pointers are host pointers of `dtype`.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/conv2d_params.h"

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

}  // namespace sg::cpu
