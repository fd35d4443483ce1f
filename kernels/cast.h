#pragma once
// Casts between storage types: every pair of f32, f16, bf16 (round to nearest even, NaN
// stays NaN, overflow to infinity, exactly core/half.h's conversions on every device), and
// u8 -> f32/f16/bf16 for image input, optionally scaled (y = float(x) * scale, then rounded).
// src and dst have the same shape; the same dtype is a plain copy.
#include "core/tensor.h"

namespace sg {

void cast(const Tensor& src, Tensor& dst, const Stream& stream = {});

// src is u8; dst is f32/f16/bf16: dst = round(float(src) * scale).
void cast_scaled(const Tensor& src, Tensor& dst, float scale, const Stream& stream = {});

}  // namespace sg
