#pragma once
// CUDA cast launcher (declared without CUDA headers).
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace sg::cuda {

// src_dtype is f32/f16/bf16/u8 and dst_dtype f32/f16/bf16; scale applies to u8 sources only.
void cast(DType src_dtype, DType dst_dtype, const void* src, void* dst, int64_t n, float scale, StreamHandle stream);

}  // namespace sg::cuda
