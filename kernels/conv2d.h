#pragma once
// 2-D convolution, forward and backward, dense / depthwise / pointwise / strided, NHWC.
// Storage f32, f16 or bf16 (x, w, bias, y all the same dtype), f32 accumulation.
//
//   x    [N, H, W, Cin]
//   w    [Cout, kh, kw, Cin / groups]
//   bias [Cout] or nullptr
//   y    [N, Ho, Wo, Cout], Ho = (H + pad_top + pad_bottom - kh) / stride_h + 1
//
// Every output is overwritten, never accumulated into. Errors name the op and the shapes.
#include "core/tensor.h"
#include "kernels/conv2d_params.h"

namespace sg {

// The geometry of a call, checked: throws naming the op and every shape when they disagree.
Conv2dShape conv2d_shape(const char* op, const Conv2dParams& p, const Shape& x, const Shape& w);

void conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                    const Stream& stream = {});
// dx = conv2d_transpose(dy, w)
void conv2d_backward_input(const Conv2dParams& p, const Tensor& dy, const Tensor& w, Tensor& dx,
                           const Stream& stream = {});
// dw = correlation of x with dy; dbias = sum of dy over N, Ho, Wo (skipped when nullptr).
void conv2d_backward_weight(const Conv2dParams& p, const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias,
                            const Stream& stream = {});

}  // namespace sg
