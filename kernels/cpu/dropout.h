#pragma once
// Fast CPU dropout / drop-connect: one Philox block per four elements, OpenMP over blocks.
#include <cstdint>

#include "core/dtype.h"

namespace sg::cpu {

void dropout(DType dtype, const void* x, void* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset);
void drop_connect(DType dtype, const void* x, void* y, int64_t N, int64_t per_sample, float p, float scale,
                  uint64_t seed, uint64_t offset);

}  // namespace sg::cpu
