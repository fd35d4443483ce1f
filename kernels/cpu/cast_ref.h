#pragma once
// Reference casts: one conversion per element through float (f16 -> f32 and bf16 -> f32 are
// exact, so the only rounding is the final one to the destination type).
#include <cstdint>
#include <type_traits>

#include "core/half.h"

namespace sg::cpu::ref {

template <class S, class D>
void cast(const S* src, D* dst, int64_t n, float scale = 1.0f) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<S, uint8_t>)
      dst[i] = from_acc<D>(float(src[i]) * scale);
    else
      dst[i] = from_acc<D>(to_acc(src[i]));
  }
}

}  // namespace sg::cpu::ref
