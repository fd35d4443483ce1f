#pragma once
// Batch normalisation over N, H, W per channel (NHWC, channels last), optionally fused with
// the activation that follows it. x, y, dx, dy are f32/f16/bf16 storage ([N, H, W, C], or any
// rank >= 2 whose last extent is C: the statistics run over the M = numel / C other elements);
// gamma, beta, running_mean, running_var, saved_mean, saved_invstd, dgamma, dbeta are f32 [C].
//
// PyTorch's formulas exactly:
//   training:  mean = sum x / M, var = sum (x - mean)^2 / M (biased), invstd = 1 / sqrt(var + eps),
//              y = act((x - mean) * invstd * gamma + beta),
//              running_mean = (1 - momentum) * running_mean + momentum * mean,
//              running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1).
//   evaluation: the same with running_mean and invstd = 1 / sqrt(running_var + eps); no update.
// momentum is PyTorch's convention (0.1 by default; Keras momentum 0.99 is PyTorch 0.01).
// Training needs M >= 2 (PyTorch refuses one value per channel too).
#include "core/tensor.h"
#include "kernels/scalar_math.h"

namespace sg {

// The f32 scratch the CUDA backward takes beside its partial sums (kernels/cuda_channel_reduce_layout.h):
// the three per-channel coefficients of dx and, in evaluation, invstd from the running variance. One
// definition for the kernel and its meta branch (kernels/batch_norm.cpp, which the memory plan runs).
inline int64_t cuda_batch_norm_backward_scratch_floats(int64_t C) { return 4 * C; }

struct BatchNormParams {
  double eps = 1e-5;
  double momentum = 0.1;
  // Applied after the affine transform in the same pass; backward recomputes its input from x.
  math::Activation activation = math::Activation::identity;
};

// Training forward: writes y, updates running_mean/running_var in place, and writes the batch's
// mean and inverse standard deviation for backward.
void batch_norm_forward_train(const BatchNormParams& p, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& saved_mean,
                              Tensor& saved_invstd, const Stream& stream = {});

// Evaluation forward with the running statistics. y may alias x.
void batch_norm_forward_eval(const BatchNormParams& p, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, Tensor& y,
                             const Stream& stream = {});

// Training backward (through the batch statistics): dy is the gradient of act(bn(x)).
//   dz = dy * act'(z), xhat = (x - mean) * invstd, dbeta = sum dz, dgamma = sum dz * xhat,
//   dx = gamma * invstd * (dz - dbeta / M - xhat * dgamma / M).
void batch_norm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                         const Tensor& beta, const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta, const Stream& stream = {});

// Evaluation-mode backward (frozen statistics): dx = dz * gamma * invstd with the running
// statistics; dgamma and dbeta as in training.
void batch_norm_backward_eval(const BatchNormParams& p, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean, const Tensor& running_var, Tensor& dx,
                              Tensor& dgamma, Tensor& dbeta, const Stream& stream = {});

}  // namespace sg
