#pragma once
// The dropout mask, shared by the CPU reference, the fast CPU path and the CUDA kernels so
// that a (seed, offset) pair drops exactly the same elements on every device:
//   element i is kept iff philox_uniform(seed, offset, i) >= p, and kept values are scaled by
//   1 / (1 - p). p is compared as a float on every device.
#include <cstdint>

#include "core/hd.h"
#include "core/philox.h"

namespace sg::math {

// The four uniforms of Philox block `block` (elements 4*block .. 4*block+3), the same numbers
// philox_uniform gives one at a time: fast paths draw one block per four elements.
SG_HD_INLINE PhiloxOutput philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32_10(uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32),
                       uint32_t(seed), uint32_t(seed >> 32));
}

// philox_uniform's mapping of 32 random bits to [0, 1).
SG_HD_INLINE float philox_bits_to_uniform(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

SG_HD_INLINE bool dropout_keep(float uniform, float p) { return uniform >= p; }

// The multiplier of a kept element: 1 / (1 - p), or 0 when p = 1 (everything dropped).
inline float dropout_scale(double p) { return p >= 1.0 ? 0.0f : float(1.0 / (1.0 - p)); }

// y = x * (keep ? scale : 0): a product (not a select) so NaN propagates like PyTorch's x * mask.
template <class F>
SG_HD_INLINE F dropout_apply(F x, bool keep, float scale) {
  return x * (keep ? F(scale) : F(0));
}

}  // namespace sg::math
