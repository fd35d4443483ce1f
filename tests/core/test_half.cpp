// f16/bf16 conversions: exhaustive round trips and round-to-nearest-even against the
// hardware-free definition (the exact value halfway between two representable numbers).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/half.h"
#include "core/philox.h"

namespace sg {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = half_bits_to_float(uint16_t(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(f))));
      continue;
    }
    ASSERT_EQ(float_to_half_bits(f), bits) << "bits " << bits << " value " << f;
  }
}

TEST(Half, RoundsToNearestEven) {
  // Between 1 and the next half (1 + 2^-10): the midpoint rounds to even (1), above it up.
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3C00u);
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01u);
  EXPECT_EQ(float_to_half_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02u);  // tie to even, up
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7BFFu);
  EXPECT_EQ(float_to_half_bits(65519.0f), 0x7BFFu);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7C00u);  // rounds to infinity
  EXPECT_EQ(float_to_half_bits(-std::numeric_limits<float>::infinity()), 0xFC00u);
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001u);         // smallest subnormal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000u);         // tie to even: zero
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.5f, -25)), 0x0001u);
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -25)), 0x0002u);         // 1.5 units: tie to even 2
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(float_to_bfloat16_bits(1.0f), 0x3F80u);
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80u);  // tie to even (down)
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82u);  // tie to even (up)
  EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const float f = bfloat16_bits_to_float(uint16_t(bits));
    if (!std::isnan(f)) {
      ASSERT_EQ(float_to_bfloat16_bits(f), bits);
    }
  }
}

TEST(Philox, MatchesPublishedKnownAnswers) {
  // Known-answer vectors of Random123's kat_vectors for philox4x32_10.
  PhiloxOutput zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  PhiloxOutput ones = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(ones.v[0], 0x408f276du);
  EXPECT_EQ(ones.v[1], 0x41c83b0eu);
  EXPECT_EQ(ones.v[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.v[3], 0x6d5451fdu);
}

TEST(Philox, UniformIsInUnitIntervalAndBalanced) {
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = philox_uniform(42, 7, uint64_t(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NE(philox_uniform(42, 7, 0), philox_uniform(42, 8, 0));
  EXPECT_NE(philox_uniform(42, 7, 0), philox_uniform(43, 7, 0));
}

}  // namespace
}  // namespace sg
