#pragma once
// Reference optimizer updates, gradient-norm clipping and loss-scale unscaling: one obvious
// loop each. Params and state are F (float, or double in tests); gradients G (float, Half,
// BFloat16 or double) are converted on load.
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/half.h"
#include "kernels/optimizer_math.h"

namespace sg::cpu::ref {

template <class F, class G>
void sgd_step(const SgdParams& s, F* param, const G* grad, F* momentum_buffer, bool first_step, int64_t n) {
  F unused = 0;
  for (int64_t i = 0; i < n; ++i)
    math::sgd_update<F>(param[i], F(to_acc(grad[i])), momentum_buffer ? momentum_buffer[i] : unused, F(s.lr),
                        F(s.momentum), F(s.dampening), F(s.weight_decay), s.nesterov, first_step);
}

template <class F, class G>
void adamw_step(const AdamWParams& a, int64_t step, F* param, const G* grad, F* exp_avg, F* exp_avg_sq, int64_t n) {
  const AdamWStepConstants c = adamw_step_constants(a, step);
  for (int64_t i = 0; i < n; ++i)
    math::adamw_update<F>(param[i], F(to_acc(grad[i])), exp_avg[i], exp_avg_sq[i], F(c.decay), F(a.beta1),
                          F(c.one_minus_beta1), F(a.beta2), F(c.one_minus_beta2), F(c.step_size),
                          F(c.bias_correction2_sqrt), F(a.eps));
}

// torch.nn.utils.clip_grad_norm_ with the L2 norm: total = sqrt(sum of squares over all
// tensors) in double; each gradient times max_norm / (total + 1e-6) when that is below 1.
// Returns the total norm.
template <class G>
double clip_grad_norm(const std::vector<G*>& grads, const std::vector<int64_t>& sizes, double max_norm) {
  double sum = 0;
  for (size_t t = 0; t < grads.size(); ++t)
    for (int64_t i = 0; i < sizes[t]; ++i) {
      const double g = to_acc(grads[t][i]);
      sum += g * g;
    }
  const double total = std::sqrt(sum);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1)
    for (size_t t = 0; t < grads.size(); ++t)
      for (int64_t i = 0; i < sizes[t]; ++i) grads[t][i] = from_acc<G>(acc_t<G>(to_acc(grads[t][i]) * coef));
  return total;
}

// g *= inv_scale; returns true when any element was inf or NaN (before scaling).
template <class G>
bool non_finite_check_and_unscale(G* grad, int64_t n, float inv_scale) {
  bool found = false;
  for (int64_t i = 0; i < n; ++i) {
    const float g = to_acc(grad[i]);
    if (!std::isfinite(g)) found = true;
    grad[i] = from_acc<G>(g * inv_scale);
  }
  return found;
}

}  // namespace sg::cpu::ref
