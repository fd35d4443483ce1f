#pragma once
// Inference-only fusions of conv + eval-mode batch norm (+ activation), for the forward of a
// network in evaluation mode (nn/ adopts them; the training path never uses them).
//
//   fold_batch_norm_into_conv: with scale = gamma / sqrt(running_var + eps),
//     w_folded[o, ...] = w[o, ...] * scale[o]
//     bias_folded[o]   = beta[o] + (bias[o] - running_mean[o]) * scale[o]   (bias 0 when absent)
//   so that bn(conv(x, w) + bias) == conv(x, w_folded) + bias_folded exactly in real arithmetic
//   (within float rounding in practice). Computed in double on the host, stored in w's dtype
//   (w_folded) and f32 (bias_folded, like BN's beta), on w's device. Do it once per set of
//   weights, not per forward.
//
//   conv2d_bias_activation_forward: y = act(conv2d(x, w) + bias) with bias f32 [Cout]. On the
//   CPU a depthwise convolution does it in one pass; other convolutions run the GEMM and then
//   one bias + activation pass; the CUDA path is conv2d_forward + bias_activation_forward.
//
//   pointwise_gated_forward: the squeeze-excite gate and the 1x1 projection that follows it,
//   y[n] = act(conv1x1(x[n] * gate[n], w) + bias); on the CPU the gate scales a per-image copy of
//   the weights, so the gated activations (the block's widest tensor) are never written or read.
//
// A MBConv in eval mode becomes: expand = conv2d_bias_activation_forward(swish), depthwise = the
// same (one pass on the CPU), the SE gate from the depthwise output as before, then project =
// pointwise_gated_forward(depthwise output, gate, identity); BN and channel_scale disappear.
#include "core/tensor.h"
#include "kernels/conv2d_params.h"
#include "kernels/scalar_math.h"

namespace sg {

// w [Cout, kh, kw, Cin/groups] (f32/f16/bf16), bias same dtype [Cout] or nullptr; gamma, beta,
// running_mean, running_var f32 [Cout]. w_folded: w's shape and dtype; bias_folded: f32 [Cout].
void fold_batch_norm_into_conv(const Tensor& w, const Tensor* bias, const Tensor& gamma, const Tensor& beta,
                               const Tensor& running_mean, const Tensor& running_var, double eps, Tensor& w_folded,
                               Tensor& bias_folded);

// x [N, H, W, Cin], w [Cout, kh, kw, Cin/groups], y [N, Ho, Wo, Cout] one dtype; bias f32 [Cout]
// or nullptr (act only).
void conv2d_bias_activation_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias,
                                    math::Activation act, Tensor& y, const Stream& stream = {});

// x [N, H, W, Cin], gate [N, Cin], w [Cout, 1, 1, Cin], y [N, H, W, Cout] one dtype; bias f32 [Cout]
// or nullptr.
void pointwise_gated_forward(const Tensor& x, const Tensor& gate, const Tensor& w, const Tensor* bias,
                             math::Activation act, Tensor& y, const Stream& stream = {});

}  // namespace sg
