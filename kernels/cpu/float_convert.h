#pragma once
// The one f16/bf16 <-> f32 conversion layer of the fast CPU paths: 16-bit storage is converted
// to f32 scratch, the arithmetic runs on float (and vectorises), results are rounded back once.
//
// Every conversion gives exactly the bits of core/half.h (to_acc / from_acc): round to nearest
// even, overflow to infinity, NaN stays NaN (from_f32 writes core/half.h's quiet NaN). Half uses
// F16C when the CPU has it (checked once, at the first call), the portable code otherwise.
//
//   to_f32 / from_f32                    serial: rows inside a parallel region, short arrays
//   to_f32_parallel / from_f32_parallel  OpenMP over fixed blocks above kConvertParallelMin,
//                                        serial below; call from serial code
//   F32Input<T> / F32Output<T>           a whole tensor as f32 (no copy for float)
//   f32_row / f32_out_row / store_f32_row  the same for one row, with caller-owned scratch
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "core/half.h"

namespace sg::cpu {

// ---- serial ------------------------------------------------------------------------------
inline void to_f32(const float* src, float* dst, int64_t n) {
  if (n > 0 && src != dst) std::memcpy(dst, src, size_t(n) * sizeof(float));
}
void to_f32(const Half* src, float* dst, int64_t n);
void to_f32(const BFloat16* src, float* dst, int64_t n);

inline void from_f32(const float* src, float* dst, int64_t n) {
  if (n > 0 && src != dst) std::memcpy(dst, src, size_t(n) * sizeof(float));
}
void from_f32(const float* src, Half* dst, int64_t n);
void from_f32(const float* src, BFloat16* dst, int64_t n);

// ---- parallel ----------------------------------------------------------------------------
// Elements per block and the size below which a conversion stays on the calling thread: waking
// the OpenMP team costs more than converting a few ten thousand elements.
inline constexpr int64_t kConvertBlock = 8192;
inline constexpr int64_t kConvertParallelMin = int64_t(1) << 16;

// Calls fn(begin, count) over [0, n) in blocks of kConvertBlock, in parallel from
// kConvertParallelMin elements on. Blocks are fixed, so results never depend on the threads.
template <class Fn>
void for_convert_blocks(int64_t n, Fn&& fn) {
  const int64_t blocks = (n + kConvertBlock - 1) / kConvertBlock;
#pragma omp parallel for schedule(static) if (n >= kConvertParallelMin)
  for (int64_t b = 0; b < blocks; ++b) fn(b * kConvertBlock, std::min(kConvertBlock, n - b * kConvertBlock));
}

template <class T>
void to_f32_parallel(const T* src, float* dst, int64_t n) {
  for_convert_blocks(n, [&](int64_t i, int64_t count) { to_f32(src + i, dst + i, count); });
}

template <class T>
void from_f32_parallel(const float* src, T* dst, int64_t n) {
  for_convert_blocks(n, [&](int64_t i, int64_t count) { from_f32(src + i, dst + i, count); });
}

// ---- elementwise maps in f32 ---------------------------------------------------------------
// y[i] = op(a[i], b[i]) computed in f32 (b may be null for a unary op, which then sees 0;
// y may alias a or b): float storage directly, f16/bf16 through converted blocks. The blocks
// are fixed, so results never depend on the number of threads.
template <class T, class Op>
void map_f32(const T* a, const T* b, T* y, int64_t n, Op op) {
  if constexpr (std::is_same_v<T, float>) {
    if (b) {
#pragma omp parallel for simd schedule(static) if (n >= kConvertParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], b[i]);
    } else {
#pragma omp parallel for simd schedule(static) if (n >= kConvertParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], 0.0f);
    }
  } else {
    for_convert_blocks(n, [&](int64_t first, int64_t count) {
      float av[kConvertBlock], bv[kConvertBlock];
      to_f32(a + first, av, count);
      if (b) {
        to_f32(b + first, bv, count);
#pragma omp simd
        for (int64_t i = 0; i < count; ++i) av[i] = op(av[i], bv[i]);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < count; ++i) av[i] = op(av[i], 0.0f);
      }
      from_f32(av, y + first, count);
    });
  }
}

// ---- whole tensors -----------------------------------------------------------------------
namespace detail {
using F32Buffer = std::unique_ptr<float[]>;
inline F32Buffer make_f32_buffer(int64_t n) {
  return std::make_unique_for_overwrite<float[]>(size_t(std::max<int64_t>(n, 1)));
}
}  // namespace detail

// A read-only array as f32: the pointer itself for float, else a converted copy (parallel).
template <class T>
class F32Input {
 public:
  F32Input(const T* src, int64_t n) {
    if constexpr (std::is_same_v<T, float>) {
      data_ = src;
      (void)n;
    } else {
      owned_ = detail::make_f32_buffer(n);
      to_f32_parallel(src, owned_.get(), n);
      data_ = owned_.get();
    }
  }
  F32Input(const F32Input&) = delete;
  F32Input& operator=(const F32Input&) = delete;
  const float* get() const { return data_; }

 private:
  detail::F32Buffer owned_;
  const float* data_ = nullptr;
};

// An output array computed in f32: in place for float, else in (uninitialised) scratch that
// store() rounds into the array once (parallel). Call store() after writing all n values.
template <class T>
class F32Output {
 public:
  F32Output(T* dst, int64_t n) : dst_(dst), n_(n) {
    if constexpr (!std::is_same_v<T, float>) owned_ = detail::make_f32_buffer(n);
  }
  F32Output(const F32Output&) = delete;
  F32Output& operator=(const F32Output&) = delete;
  float* get() {
    if constexpr (std::is_same_v<T, float>)
      return dst_;
    else
      return owned_.get();
  }
  void store() {
    if constexpr (!std::is_same_v<T, float>) from_f32_parallel(owned_.get(), dst_, n_);
  }

 private:
  T* dst_;
  int64_t n_;
  detail::F32Buffer owned_;
};

// ---- rows inside parallel loops (caller-owned scratch of n floats) -------------------------
// The row as floats: itself for float, else converted into `scratch`.
template <class T>
inline const float* f32_row(const T* row, float* scratch, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    (void)scratch;
    (void)n;
    return row;
  } else {
    to_f32(row, scratch, n);
    return scratch;
  }
}

// Where to compute an output row: the row itself for float, else `scratch`, see store_f32_row.
template <class T>
inline float* f32_out_row(T* row, float* scratch) {
  if constexpr (std::is_same_v<T, float>) {
    (void)scratch;
    return row;
  } else {
    return scratch;
  }
}

// Rounds a row computed at f32_out_row(row, scratch) into `row` (nothing to do for float).
template <class T>
inline void store_f32_row(const float* values, T* row, int64_t n) {
  if constexpr (!std::is_same_v<T, float>)
    from_f32(values, row, n);
  else {
    (void)values;
    (void)row;
    (void)n;
  }
}

// ---- the individual Half paths, for tests ------------------------------------------------
namespace detail {
// Whether the F16C path is compiled in and this CPU has AVX and F16C.
bool have_f16c();
// core/half.h, element by element.
void half_to_f32_portable(const Half* src, float* dst, int64_t n);
void f32_to_half_portable(const float* src, Half* dst, int64_t n);
// F16C; call only when have_f16c().
void half_to_f32_f16c(const Half* src, float* dst, int64_t n);
void f32_to_half_f16c(const float* src, Half* dst, int64_t n);
}  // namespace detail

}  // namespace sg::cpu
