#pragma once
// Division by a run-time constant as a multiply-high and a shift (Granlund & Montgomery, the
// form CUTLASS uses), for the index arithmetic of the convolution kernels: an implicit GEMM
// splits every row and column index into (image, y, x) or (tap, channel), several times per
// tile, and a hardware-less 32-bit division costs ~20 instructions on a GPU.
//
// Valid for dividends in [0, 2^31) and divisors in [1, 2^31). Host and device; no CUDA headers,
// so the CPU tests check it exhaustively on small values and at the edges.
#include <cstdint>

#include "core/hd.h"

namespace sg::cuda {

SG_HD_INLINE uint32_t mul_hi_u32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return uint32_t((uint64_t(a) * uint64_t(b)) >> 32);
#endif
}

struct FastDivmod {
  int32_t divisor = 1;
  uint32_t multiplier = 0;  // 0 marks divisor 1 (the quotient is the dividend)
  uint32_t shift = 0;

  FastDivmod() = default;
  explicit FastDivmod(int32_t d) : divisor(d) {
    if (d == 1) return;
    uint32_t log2_ceil = 0;
    while ((uint64_t(1) << log2_ceil) < uint64_t(d)) ++log2_ceil;
    const uint32_t p = 31 + log2_ceil;  // multiplier = ceil(2^p / d) < 2^32
    multiplier = uint32_t(((uint64_t(1) << p) + uint64_t(d) - 1) / uint64_t(d));
    shift = p - 32;
  }

  SG_HD_INLINE int32_t div(int32_t n) const {
    return multiplier == 0 ? n : int32_t(mul_hi_u32(uint32_t(n), multiplier) >> shift);
  }
  // quotient = n / divisor, remainder = n % divisor.
  SG_HD_INLINE void divmod(int32_t n, int32_t& quotient, int32_t& remainder) const {
    quotient = div(n);
    remainder = n - quotient * divisor;
  }
};

}  // namespace sg::cuda
