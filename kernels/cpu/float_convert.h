#pragma once
// f16/bf16 <-> f32 conversion into scratch buffers for the fast CPU paths of pooling and the
// tensor ops: the arithmetic loops then run on float and vectorise.
#include <cstdint>
#include <vector>

#include "core/half.h"

namespace sg::cpu::detail {

template <class T>
inline void load_f32(const T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = to_acc(src[i]);
}

template <class T>
inline void store_f32(const float* src, T* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = from_acc<T>(src[i]);
}

// A whole tensor as floats (parallel); for float storage use the pointer itself instead.
template <class T>
std::vector<float> to_f32_buffer(const T* src, int64_t n) {
  std::vector<float> out(size_t(n > 0 ? n : 0));
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = to_acc(src[i]);
  return out;
}

template <class T>
void from_f32_buffer(const float* src, T* dst, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] = from_acc<T>(src[i]);
}

}  // namespace sg::cpu::detail
