#pragma once
// Fused bias + activation, the epilogue of linear and 1x1/conv layers: y = act(x + bias)
// over x [..., C] (NHWC or [N, C]) with bias f32 [C]. x/y/dx/dy are f32/f16/bf16 storage
// (one dtype), arithmetic in f32; bias and dbias are always f32 (master parameters).
#include "core/tensor.h"
#include "kernels/scalar_math.h"

namespace sg {

// y may alias x (in place).
void bias_activation_forward(math::Activation activation, const Tensor& x, const Tensor& bias, Tensor& y,
                             const Stream& stream = {});

// x is the pre-bias input of the forward; act'(x + bias) is recomputed from it.
// dx = dy * act'(x + bias); dbias = sum over every row of dx (in f32). dx may alias dy.
void bias_activation_backward(math::Activation activation, const Tensor& x, const Tensor& bias, const Tensor& dy,
                              Tensor& dx, Tensor& dbias, const Stream& stream = {});

}  // namespace sg
