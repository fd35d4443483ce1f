#pragma once
// Optimizer hyper-parameters and the per-element update rules shared by the CPU reference, the
// fast CPU path and the CUDA kernels. F is float (master weights) or double. PyTorch 1.13's
// torch.optim.SGD and torch.optim.AdamW (single-tensor path), operation for operation.
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "core/hd.h"
#include "kernels/scalar_math.h"

namespace sg {

struct SgdParams {
  float lr = 0.01f;
  float momentum = 0;
  float dampening = 0;
  float weight_decay = 0;  // coupled: added to the gradient, g += wd * p
  bool nesterov = false;   // needs momentum > 0 and dampening 0
};

struct AdamWParams {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;  // decoupled: p *= 1 - lr * wd
};

// AdamW's per-step constants, computed on the host in double as PyTorch does in Python.
struct AdamWStepConstants {
  double decay;                  // 1 - lr * wd
  double one_minus_beta1;        // 1 - beta1
  double one_minus_beta2;        // 1 - beta2
  double step_size;              // lr / (1 - beta1^t)
  double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

inline AdamWStepConstants adamw_step_constants(const AdamWParams& p, int64_t step) {
  const double bias_correction1 = 1.0 - std::pow(double(p.beta1), double(step));
  const double bias_correction2 = 1.0 - std::pow(double(p.beta2), double(step));
  return {1.0 - double(p.lr) * double(p.weight_decay), 1.0 - double(p.beta1), 1.0 - double(p.beta2),
          double(p.lr) / bias_correction1, std::sqrt(bias_correction2)};
}

namespace math {

// One SGD element. buf is read only when momentum != 0 and first_step is false (PyTorch
// starts the buffer as a copy of the first gradient).
template <class F>
SG_HD_INLINE void sgd_update(F& p, F g, F& buf, F lr, F momentum, F dampening, F weight_decay, bool nesterov,
                             bool first_step) {
  if (weight_decay != F(0)) g = g + weight_decay * p;
  if (momentum != F(0)) {
    buf = first_step ? g : buf * momentum + (F(1) - dampening) * g;
    g = nesterov ? g + momentum * buf : buf;
  }
  p = p - lr * g;
}

// One AdamW element with the step constants c (as F).
template <class F>
SG_HD_INLINE void adamw_update(F& p, F g, F& m, F& v, F decay, F beta1, F one_minus_beta1, F beta2,
                               F one_minus_beta2, F step_size, F bias_correction2_sqrt, F eps) {
  p = p * decay;
  m = m * beta1 + one_minus_beta1 * g;
  v = v * beta2 + one_minus_beta2 * g * g;
  const F denom = sqrt_(v) / bias_correction2_sqrt + eps;
  p = p - step_size * (m / denom);
}

// By the exponent bits, so no compiler flag can fold the test away.
SG_HD_INLINE bool is_finite(float x) { return (float_to_bits(x) & 0x7f800000u) != 0x7f800000u; }

}  // namespace math
}  // namespace sg
