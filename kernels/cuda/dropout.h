#pragma once
// CUDA dropout / drop-connect launchers (declared without CUDA headers).
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace sg::cuda {

void dropout(DType dtype, const void* x, void* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset,
             StreamHandle stream);
void drop_connect(DType dtype, const void* x, void* y, int64_t N, int64_t per_sample, float p, float scale,
                  uint64_t seed, uint64_t offset, StreamHandle stream);

}  // namespace sg::cuda
