#pragma once
// 16-bit floating-point storage types shared by host and device code.
//
// Half and BFloat16 are plain 16-bit storage; all arithmetic happens in float (or double in
// the reference kernels). Conversions to 16 bits round to nearest even and give the same bits
// on the CPU and on the GPU for every input, NaN included (canonical quiet NaN). Widening f16
// NaNs to float may keep a different payload on the GPU (still NaN, same sign).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/hd.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace sg {

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

SG_HD_INLINE uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

SG_HD_INLINE float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// IEEE binary16, round to nearest even; overflow gives infinity, NaN stays NaN.
SG_HD_INLINE uint16_t float_to_half_bits(float f) {
#if defined(__CUDA_ARCH__)
  // The hardware conversion keeps NaN payload bits; return the host's canonical quiet NaN so
  // both devices give the same bits for every input.
  if (f != f) return uint16_t(((float_to_bits(f) >> 16) & 0x8000u) | 0x7e00u);
  return __half_as_ushort(__float2half_rn(f));
#else
  const uint32_t x = float_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return uint16_t(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to infinity
  if (abs <= 0x33000000u) return uint16_t(sign);            // <= 2^-25 rounds to zero
  const uint32_t exponent = abs >> 23;
  const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
  if (exponent < 113) {  // result is a half subnormal: count units of 2^-24
    const uint32_t shift = 126 - exponent;
    uint32_t r = mantissa >> shift;
    const uint32_t rem = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t h = ((exponent - 112) << 10) | ((abs & 0x7fffffu) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return uint16_t(sign | h);
#endif
}

SG_HD_INLINE float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
#endif
}

// bfloat16 is the top half of a float: round to nearest even, keep NaN quiet.
SG_HD_INLINE uint16_t float_to_bfloat16_bits(float f) {
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

SG_HD_INLINE float bfloat16_bits_to_float(uint16_t b) { return bits_to_float(uint32_t(b) << 16); }

// ---- Uniform load/store used by every templated kernel -------------------------------------
// Accumulate<T>::type is the arithmetic type for storage type T: double for the double
// reference (finite-difference tests), float for everything else.
template <class T>
struct Accumulate {
  using type = float;
};
template <>
struct Accumulate<double> {
  using type = double;
};
template <class T>
using acc_t = typename Accumulate<T>::type;

SG_HD_INLINE float to_acc(float v) { return v; }
SG_HD_INLINE double to_acc(double v) { return v; }
SG_HD_INLINE float to_acc(Half v) { return half_bits_to_float(v.bits); }
SG_HD_INLINE float to_acc(BFloat16 v) { return bfloat16_bits_to_float(v.bits); }

template <class T>
SG_HD_INLINE T from_acc(acc_t<T> v);
template <>
SG_HD_INLINE float from_acc<float>(float v) {
  return v;
}
template <>
SG_HD_INLINE double from_acc<double>(double v) {
  return v;
}
template <>
SG_HD_INLINE Half from_acc<Half>(float v) {
  return Half{float_to_half_bits(v)};
}
template <>
SG_HD_INLINE BFloat16 from_acc<BFloat16>(float v) {
  return BFloat16{float_to_bfloat16_bits(v)};
}

}  // namespace sg
