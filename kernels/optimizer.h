#pragma once
// Optimizer updates as kernels, gradient-norm clipping and the pieces of dynamic loss scaling.
// PyTorch 1.13 semantics (torch.optim.SGD, torch.optim.AdamW, clip_grad_norm_,
// _amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_).
//
//   param, optimizer state: f32 (master weights), any shape
//   grad: same shape as param, f32, f16 or bf16 (converted on load)
//
// Updates happen in place on param and state. GPU reductions are deterministic (two passes,
// fixed order, no float atomics).
#include <span>

#include "core/tensor.h"
#include "kernels/optimizer_math.h"

namespace sg {

// torch.optim.SGD: g += wd p; buf = momentum buf + (1 - dampening) g (buf = g on the first
// step); g = nesterov ? g + momentum buf : buf; p -= lr g. momentum_buffer (f32, param's
// shape) is needed when momentum != 0 and may be nullptr otherwise.
void sgd_step(const SgdParams& p, Tensor& param, const Tensor& grad, Tensor* momentum_buffer, bool first_step,
              const Stream& stream = {});

// torch.optim.AdamW at step `step` (1 for the first call): p *= 1 - lr wd; m, v moving
// averages; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). exp_avg and
// exp_avg_sq are f32 with param's shape, zero before the first step.
void adamw_step(const AdamWParams& p, int64_t step, Tensor& param, const Tensor& grad, Tensor& exp_avg,
                Tensor& exp_avg_sq, const Stream& stream = {});

// torch.nn.utils.clip_grad_norm_ (L2): total = sqrt(sum of squares over every tensor); each
// gradient is multiplied by max_norm / (total + 1e-6) when that is below 1. Returns the total
// norm (so it waits for the device). Gradients: any float dtype, all on one device.
float clip_grad_norm(std::span<Tensor* const> grads, float max_norm, const Stream& stream = {});

// Every gradient *= inv_scale; found_inf (f32 [1], on the gradients' device) is set to 1 when
// any element of any gradient is inf or NaN, and otherwise left as it was (zero it first).
// inv_scale 1 is a read-only check (nothing is written): the f32/bf16 guard of every step.
void non_finite_check_and_unscale(std::span<Tensor* const> grads, Tensor& found_inf, float inv_scale,
                                  const Stream& stream = {});

// Dynamic loss scaling for f16 training (torch.cuda.amp.GradScaler's rule).
struct LossScaleParams {
  float init_scale = 65536.0f;
  float growth_factor = 2.0f;
  float backoff_factor = 0.5f;
  int growth_interval = 2000;
  // The floor (not GradScaler's; ours): a skip that takes the scale below min_scale is an error
  // (train/train_step.h), not another skip. Below 1 the f16 gradients would be smaller than
  // the true ones, so an overflow at scale 1 means the true gradients themselves do not fit
  // f16 (|g| > 65504): the run has diverged and halving further only hides it. From the
  // default 2^16 that is 17 overflows in a row.
  float min_scale = 1.0f;
};
struct LossScaleState {
  float scale = 65536.0f;
  int growth_tracker = 0;  // good steps since the scale last changed
};
// After a step: on inf/NaN, scale *= backoff and the counter restarts; otherwise after
// growth_interval good steps in a row, scale *= growth (kept only if finite) and the counter
// restarts. Returns true when the step's gradients were finite (the step should be applied).
bool update_loss_scale(LossScaleState& state, bool found_inf, const LossScaleParams& p = {});

}  // namespace sg
