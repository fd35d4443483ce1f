#pragma once
// Row chunking for the fast CPU paths that walk [M, C] rows (NHWC flattened). f16/bf16 rows
// are converted with f32_row / f32_out_row / store_f32_row of kernels/cpu/float_convert.h.
#include <cstdint>

namespace sg::cpu::rows {

// Rows are reduced in fixed chunks whose partial sums are combined in chunk order: the
// result is the same for any number of threads.
inline int64_t chunk_rows(int64_t M) {
  const int64_t target_chunks = 256;
  int64_t rows = (M + target_chunks - 1) / target_chunks;
  return rows < 16 ? 16 : rows;
}

}  // namespace sg::cpu::rows
