#pragma once
// Helpers for the fast CPU paths that walk [M, C] rows (NHWC flattened): each activation kind
// gets its own loop body, reductions run over fixed chunks of rows. f16/bf16 rows are converted
// with f32_row / f32_out_row / store_f32_row of kernels/cpu/float_convert.h.
#include <cstdint>
#include <type_traits>

#include "kernels/scalar_math.h"

namespace sg::cpu::rows {

// Calls fn(std::integral_constant<Activation, kind>) so loop bodies inline one formula.
template <class Fn>
void with_activation(math::Activation kind, Fn&& fn) {
  using A = math::Activation;
  switch (kind) {
    case A::identity: return fn(std::integral_constant<A, A::identity>{});
    case A::relu: return fn(std::integral_constant<A, A::relu>{});
    case A::relu6: return fn(std::integral_constant<A, A::relu6>{});
    case A::sigmoid: return fn(std::integral_constant<A, A::sigmoid>{});
    case A::swish: return fn(std::integral_constant<A, A::swish>{});
    case A::mish: return fn(std::integral_constant<A, A::mish>{});
  }
}

// Rows are reduced in fixed chunks whose partial sums are combined in chunk order: the
// result is the same for any number of threads.
inline int64_t chunk_rows(int64_t M) {
  const int64_t target_chunks = 256;
  int64_t rows = (M + target_chunks - 1) / target_chunks;
  return rows < 16 ? 16 : rows;
}

}  // namespace sg::cpu::rows
