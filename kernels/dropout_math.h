#pragma once
// The dropout mask, shared by the CPU reference, the fast CPU path and the CUDA kernels so
// that a (seed, offset) pair drops exactly the same elements on every device:
//   element i is kept iff philox_uniform(seed, offset, i) >= p, and kept values are scaled by
//   1 / (1 - p). p is compared as a float on every device.
#include <cstdint>

#include "core/hd.h"
#include "core/philox.h"

namespace sg::math {

// Fast paths draw core/philox.h's philox_block once per four elements: the same numbers as
// philox_uniform element by element.
SG_HD_INLINE bool dropout_keep(float uniform, float p) { return uniform >= p; }

// The multiplier of a kept element: 1 / (1 - p), or 0 when p = 1 (everything dropped).
inline float dropout_scale(double p) { return p >= 1.0 ? 0.0f : float(1.0 / (1.0 - p)); }

// y = x * (keep ? scale : 0): a product (not a select) so NaN propagates like PyTorch's x * mask.
template <class F>
SG_HD_INLINE F dropout_apply(F x, bool keep, float scale) {
  return x * (keep ? F(scale) : F(0));
}

}  // namespace sg::math
