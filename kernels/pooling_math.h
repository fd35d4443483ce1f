#pragma once
// Scalar pieces of the pooling ops shared by the CPU reference, the fast CPU path and the CUDA
// kernels. F is float, or double in the reference that the finite-difference tests run.
#include <cstdint>

#include "core/hd.h"
#include "kernels/scalar_math.h"

namespace sg::math {

// Max-pooling comparison: v replaces the current best when larger, or when it is NaN and the
// best is not (NaN propagates like PyTorch). Ties keep the earlier index (first in scan order).
template <class F>
SG_HD_INLINE bool max_pool_takes(F v, F best) {
  return v > best || (v != v && best == best);
}

// The average-pool divisor of the window starting at (h0, w0) (may be negative: padding).
// count_include_pad: the window clipped to the padded input [-pad_before, in + pad_after);
// otherwise the window clipped to the real input.
SG_HD_INLINE int64_t avg_pool_divisor(int64_t h0, int64_t w0, int64_t kh, int64_t kw, int64_t in_h, int64_t in_w,
                                      int64_t pad_bottom, int64_t pad_right, bool count_include_pad) {
  int64_t h1 = h0 + kh, w1 = w0 + kw;
  if (count_include_pad) {
    h1 = min_(h1, in_h + pad_bottom);
    w1 = min_(w1, in_w + pad_right);
    return (h1 - h0) * (w1 - w0);
  }
  return (min_(h1, in_h) - max_(h0, int64_t(0))) * (min_(w1, in_w) - max_(w0, int64_t(0)));
}

// GeM (generalised mean) pooling: y = (mean_hw clamp(x, eps)^p)^(1/p).
// clamp keeps NaN (like torch.clamp); its gradient passes where x >= eps (like torch.clamp).
template <class F>
SG_HD_INLINE F gem_clamp(F x, F eps) {
  return x < eps ? eps : x;
}
template <class F>
SG_HD_INLINE F gem_clamp_grad_mask(F x, F eps) {
  return x >= eps ? F(1) : F(0);
}

// Given the per-(n,c) statistics m = mean(xc^p) and ml = mean(xc^p * log xc):
//   y          = m^(1/p)
//   dy/dx_i    = m^(1/p - 1) * xc_i^(p-1) / HW * mask_i     (coefficient m^(1/p-1)/HW returned)
//   dy/dp      = y * (ml / (p m) - log(m) / p^2)
template <class F>
SG_HD_INLINE F gem_output(F m, F p) {
  return pow_(m, F(1) / p);
}
template <class F>
SG_HD_INLINE F gem_input_coefficient(F m, F p, F hw) {
  return pow_(m, F(1) / p - F(1)) / hw;
}
template <class F>
SG_HD_INLINE F gem_dy_dp(F m, F ml, F p) {
  return gem_output(m, p) * (ml / (p * m) - log_(m) / (p * p));
}

}  // namespace sg::math
