#pragma once
// The network's input from uint8 images on the device that computes: per channel
//   y[n, h, w, c] = scale[c] * float(x[n, h, w, c]) + shift[c]
// in f32, the product and the sum each rounded (never fused into one FMA, so the CPU and the GPU
// give the same bits), then rounded to y's dtype (f32, f16 or bf16; round to nearest even).
// x is u8 NHWC with 1..kNormalizeInputMaxChannels channels; y has x's shape. The trainer puts its
// model card's normalisation in scale and shift (grading/model_input.h: input_affine), so a
// mosaic batch goes to the GPU as uint8, a quarter of the f32 bytes, and is normalised there.
#include <span>

#include "core/tensor.h"

namespace sg {

inline constexpr int kNormalizeInputMaxChannels = 4;

void normalize_input(const Tensor& x, std::span<const float> scale, std::span<const float> shift, Tensor& y,
                     const Stream& stream = {});

}  // namespace sg
