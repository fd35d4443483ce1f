#pragma once
// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), shared by host and device code.
//
// A random stream is addressed by (seed, offset, index): element `index` of a dropout mask
// drawn at `offset` gets the same number on the CPU and on any GPU, whatever the thread
// layout, which is what makes dropout masks identical on both devices and runs reproducible.
#include <cstdint>

#include "core/hd.h"

namespace sg {

struct PhiloxOutput {
  uint32_t v[4];
};

SG_HD_INLINE uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return uint32_t((uint64_t(a) * uint64_t(b)) >> 32);
#endif
}

// Ten rounds over the 128-bit counter with the 64-bit key.
SG_HD_INLINE PhiloxOutput philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                        uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = philox_mulhi(kMul0, c0), lo0 = kMul0 * c0;
    const uint32_t hi1 = philox_mulhi(kMul1, c2), lo1 = kMul1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return PhiloxOutput{{c0, c1, c2, c3}};
}

// The four 32-bit words of counter block `block` (elements 4*block .. 4*block+3) of stream
// (seed, offset). Fast paths draw one block per four elements.
SG_HD_INLINE PhiloxOutput philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32_10(uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32),
                       uint32_t(seed), uint32_t(seed >> 32));
}

// Element `index` uses word index % 4 of block index / 4.
SG_HD_INLINE uint32_t philox_uint32(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_block(seed, offset, index >> 2).v[index & 3];
}

// 32 random bits to a uniform in [0, 1) with 24 bits: exactly representable, identical on host
// and device.
SG_HD_INLINE float philox_bits_to_uniform(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

SG_HD_INLINE float philox_uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_bits_to_uniform(philox_uint32(seed, offset, index));
}

}  // namespace sg
