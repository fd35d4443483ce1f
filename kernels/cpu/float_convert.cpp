#include "kernels/cpu/float_convert.h"

#include <bit>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define SG_FLOAT_CONVERT_F16C 1
#else
#define SG_FLOAT_CONVERT_F16C 0
#endif

namespace sg::cpu {

namespace detail {

bool have_f16c() {
#if SG_FLOAT_CONVERT_F16C
  // The build targets x86-64-v2, which has neither AVX nor F16C: ask the CPU, once. F16C is
  // CPUID leaf 1, ECX bit 29, read directly: clang 14 (the fuzz build) does not know
  // __builtin_cpu_supports("f16c").
  static const bool yes = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  }();
  return yes;
#else
  return false;
#endif
}

void half_to_f32_portable(const Half* src, float* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(src[i].bits);
}

void f32_to_half_portable(const float* src, Half* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i].bits = float_to_half_bits(src[i]);
}

#if SG_FLOAT_CONVERT_F16C
// The portable conversions cost several ns per element; F16C converts 8 per instruction with
// the same round to nearest even.
__attribute__((target("avx,f16c"))) void half_to_f32_f16c(const Half* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = half_bits_to_float(src[i].bits);
}

// VCVTPS2PH keeps the top bits of a NaN's payload where core/half.h writes the quiet NaN 0x7e00
// (with the sign): NaN lanes are replaced by the f32 quiet NaN first, which converts to exactly that.
__attribute__((target("avx,f16c"))) void f32_to_half_f16c(const float* src, Half* dst, int64_t n) {
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u)));
  const __m256 quiet_nan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(src + i);
    const __m256 is_nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 nan = _mm256_or_ps(_mm256_and_ps(x, sign_mask), quiet_nan);
    const __m256 clean = _mm256_blendv_ps(x, nan, is_nan);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(clean, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i].bits = float_to_half_bits(src[i]);
}
#else
void half_to_f32_f16c(const Half* src, float* dst, int64_t n) { half_to_f32_portable(src, dst, n); }
void f32_to_half_f16c(const float* src, Half* dst, int64_t n) { f32_to_half_portable(src, dst, n); }
#endif

}  // namespace detail

void to_f32(const Half* src, float* dst, int64_t n) {
  if (detail::have_f16c())
    detail::half_to_f32_f16c(src, dst, n);
  else
    detail::half_to_f32_portable(src, dst, n);
}

void from_f32(const float* src, Half* dst, int64_t n) {
  if (detail::have_f16c())
    detail::f32_to_half_f16c(src, dst, n);
  else
    detail::f32_to_half_portable(src, dst, n);
}

void to_f32(const BFloat16* src, float* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t(src[i].bits) << 16);
}

// float_to_bfloat16_bits without its branch, so the loop vectorises: both results are computed
// and the NaN test selects one.
void from_f32(const float* src, BFloat16* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(src[i]);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    dst[i].bits = uint16_t((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
  }
}

}  // namespace sg::cpu
