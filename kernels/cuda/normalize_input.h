#pragma once
// CUDA input-normalisation launcher (declared without CUDA headers); kernels/normalize_input.h.
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace sg::cuda {

// x: device pointer to pixels * channels u8 values (channels <= 4); y: as many of dst_dtype.
// scale and shift: host arrays of `channels` floats (passed to the kernel by value).
void normalize_input(DType dst_dtype, const uint8_t* x, int64_t pixels, int channels, const float* scale,
                     const float* shift, void* y, StreamHandle stream);

}  // namespace sg::cuda
