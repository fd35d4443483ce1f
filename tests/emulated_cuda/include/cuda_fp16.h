#pragma once
// The emulated device's 16-bit float types and conversions (round to nearest even, as the
// hardware's cvt.rn does); the arithmetic lives in tests/emulated_cuda/ptx_fragments.cpp.
#include <cstdint>

namespace sg_emu::ptx {
uint16_t float_to_f16_rn(float f);
float f16_to_float(uint16_t h);
uint16_t float_to_bf16_rn(float f);
float bf16_to_float(uint16_t h);
}  // namespace sg_emu::ptx

struct __half {
  uint16_t x;
};
struct __half2 {
  __half x, y;
};

inline __half __float2half_rn(float f) { return __half{sg_emu::ptx::float_to_f16_rn(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return sg_emu::ptx::f16_to_float(h.x); }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
