#pragma once
// CUDA convolution launchers (hand-written kernels; declared without CUDA headers).
// Same layouts and semantics as kernels/conv2d.h; pointers are device pointers of `dtype`.
#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/conv2d_params.h"

namespace sg::cuda {

void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                    const void* bias, void* y, StreamHandle stream);
void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy, const void* w,
                           void* dx, StreamHandle stream);
void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* dy,
                            void* dw, void* dbias, StreamHandle stream);

}  // namespace sg::cuda
