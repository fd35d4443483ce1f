#pragma once
// Fast CPU input normalisation (kernels/normalize_input.h): OpenMP over fixed blocks.
#include <cstdint>

#include "core/dtype.h"

namespace sg::cpu {

// x: pixels * channels u8 values; y: as many of dst_dtype (f32/f16/bf16).
void normalize_input(DType dst_dtype, const uint8_t* x, int64_t pixels, int channels, const float* scale,
                     const float* shift, void* y);

}  // namespace sg::cpu
