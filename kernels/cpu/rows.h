#pragma once
// Helpers for the fast CPU paths that walk [M, C] rows (NHWC flattened): f16/bf16 rows are
// converted to f32 scratch rows and back, and each activation kind gets its own loop body.
#include <cstdint>
#include <type_traits>

#include "core/half.h"
#include "kernels/scalar_math.h"

namespace sg::cpu::rows {

// The row as floats: itself for f32, else converted into `scratch` ([C]).
template <class T>
inline const float* load(const T* row, float* scratch, int64_t C) {
  if constexpr (std::is_same_v<T, float>) {
    (void)scratch;
    (void)C;
    return row;
  } else {
    for (int64_t c = 0; c < C; ++c) scratch[c] = to_acc(row[c]);
    return scratch;
  }
}

// Where to compute an output row: the row itself for f32, else `scratch`, stored by store().
template <class T>
inline float* out(T* row, float* scratch) {
  if constexpr (std::is_same_v<T, float>) {
    (void)scratch;
    return row;
  } else {
    return scratch;
  }
}

template <class T>
inline void store(const float* values, T* row, int64_t C) {
  if constexpr (!std::is_same_v<T, float>)
    for (int64_t c = 0; c < C; ++c) row[c] = from_acc<T>(values[c]);
  else {
    (void)values;
    (void)row;
    (void)C;
  }
}

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
