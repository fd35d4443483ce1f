#pragma once
// Scalar loss formulas shared by the CPU reference, the fast CPU path and the CUDA kernels.
// F is float, or double in the reference that the finite-difference tests run. PyTorch's
// definitions throughout.
#include <type_traits>

#include "core/hd.h"
#include "kernels/scalar_math.h"

namespace sg::math {

// How per-sample (or per-element) losses are combined, as in PyTorch.
enum class Reduction : int { none = 0, mean, sum };

// Element-by-element losses of a prediction x against a float target t.
enum class PointwiseLoss : int {
  bce_with_logits = 0,  // the ordinal "binned" head: sigmoid outputs against 0/1 targets
  mse,
  smooth_l1,  // beta = 0 is the L1 loss
};

template <class F>
SG_HD_INLINE F pointwise_loss(PointwiseLoss kind, F x, F t, F beta) {
  switch (kind) {
    case PointwiseLoss::bce_with_logits:
      // -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], without overflow for any x.
      return max_(x, F(0)) - x * t + log1p_(exp_(-abs_(x)));
    case PointwiseLoss::mse: {
      const F d = x - t;
      return d * d;
    }
    case PointwiseLoss::smooth_l1: {
      const F d = abs_(x - t);
      return d < beta ? F(0.5) * d * d / beta : d - F(0.5) * beta;
    }
  }
  return F(0);
}

// d pointwise_loss / dx. Smooth L1 takes gradient 0 at x == t, like PyTorch.
template <class F>
SG_HD_INLINE F pointwise_loss_grad(PointwiseLoss kind, F x, F t, F beta) {
  switch (kind) {
    case PointwiseLoss::bce_with_logits: return sigmoid(x) - t;
    case PointwiseLoss::mse: return F(2) * (x - t);
    case PointwiseLoss::smooth_l1: {
      const F d = x - t;
      if (abs_(d) < beta) return d / beta;
      return d > F(0) ? F(1) : (d < F(0) ? F(-1) : F(0));
    }
  }
  return F(0);
}

// Softmax cross-entropy of one row with log-sum-exp `lse`, target logit `z_target` and mean
// logit `z_mean`: (1 - eps) (-log p_target) + eps * mean_c(-log p_c) (PyTorch's label smoothing).
template <class F>
SG_HD_INLINE F cross_entropy_row(F lse, F z_target, F z_mean, F label_smoothing) {
  return (F(1) - label_smoothing) * (lse - z_target) + label_smoothing * (lse - z_mean);
}

// d cross_entropy_row / d z_c = p_c - q_c, with the smoothed target distribution
// q_c = (1 - eps) [c == target] + eps / C.
template <class F>
SG_HD_INLINE F cross_entropy_grad(F p, bool is_target, F label_smoothing, F classes) {
  return p - ((is_target ? F(1) - label_smoothing : F(0)) + label_smoothing / classes);
}

// Calls fn(std::integral_constant<PointwiseLoss, kind>) so each loop or kernel body is
// compiled for one formula.
template <class Fn>
void with_pointwise_loss(PointwiseLoss kind, Fn&& fn) {
  using P = PointwiseLoss;
  switch (kind) {
    case P::bce_with_logits: return fn(std::integral_constant<P, P::bce_with_logits>{});
    case P::mse: return fn(std::integral_constant<P, P::mse>{});
    case P::smooth_l1: return fn(std::integral_constant<P, P::smooth_l1>{});
  }
}

}  // namespace sg::math
