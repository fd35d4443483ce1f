// Casts: every pair of f32/f16/bf16 and u8 -> float types against the reference and against
// core/half.h bit for bit (special values: infinities, NaN, subnormals, ties; every f16/bf16
// pattern; a sweep of f32 patterns), a case table (tests/support/op_harness.h) run bit for bit
// against the reference on the fast CPU path and CUDA, bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "kernels/cast.h"
#include "kernels/cpu/cast_ref.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

Tensor from_bits32(const std::vector<uint32_t>& bits) {
  Tensor t = Tensor::empty({int64_t(bits.size())}, DType::f32);
  std::memcpy(t.data(), bits.data(), t.nbytes());
  return t;
}

Tensor from_bits16(const std::vector<uint16_t>& bits, DType dtype) {
  Tensor t = Tensor::empty({int64_t(bits.size())}, dtype);
  std::memcpy(t.data(), bits.data(), t.nbytes());
  return t;
}

const uint16_t* bits16(const Tensor& t) { return static_cast<const uint16_t*>(t.data()); }
const uint32_t* bits32(const Tensor& t) { return static_cast<const uint32_t*>(t.data()); }

bool is_nan_half(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu); }
bool is_nan_bf16(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu); }

// Special f32 values: zeros, infinities, NaNs, f16 subnormals and their ties, the f16
// overflow boundary, bf16 ties, f32 subnormals, and values that round up into a new exponent.
std::vector<uint32_t> special_floats() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                          65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e10f, std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                          5.9604644775390625e-8f /* 2^-24, smallest f16 subnormal */,
                          2.98023223876953125e-8f /* 2^-25, tie to zero */, 4.470348358154297e-8f /* 1.5 * 2^-25 */,
                          8.940696716308594e-8f /* 1.5 * 2^-24: tie, rounds to even 2^-23 */,
                          6.097555160522461e-5f /* largest f16 subnormal */, 6.103515625e-5f /* smallest normal */,
                          1.00048828125f /* 1 + 2^-11: tie, rounds to 1 */, 1.00146484375f /* 1 + 3 * 2^-11: tie up */,
                          2047.5f, 2049.0f, 0.1f, -0.3f, 3.14159265f};
  std::vector<uint32_t> bits;
  for (float f : v) bits.push_back(float_to_bits(f));
  // NaN payloads, signalling NaN, negative NaN; bf16 ties (low 16 bits exactly 0x8000).
  for (uint32_t b : {0x7f800001u, 0x7fc00001u, 0xffc00000u, 0x7fbfffffu, 0x3f808000u, 0x3f818000u, 0x3f80ffffu,
                     0x7f7fffffu, 0x7f7f8000u, 0x00000001u, 0x807fffffu, 0x33000001u, 0x387fe000u, 0x387ff000u})
    bits.push_back(b);
  return bits;
}

std::vector<uint16_t> every_pattern16() {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  return all;
}

TEST(Cast, F32ToHalfAndBack_MatchesHalfHeaderOnSpecialValues) {
  const std::vector<uint32_t> bits = special_floats();
  const Tensor src = from_bits32(bits);
  Tensor h = Tensor::empty(src.shape(), DType::f16), b = Tensor::empty(src.shape(), DType::bf16);
  Tensor back_h = Tensor::empty(src.shape(), DType::f32), back_b = Tensor::empty(src.shape(), DType::f32);
  cast(src, h);
  cast(src, b);
  cast(h, back_h);
  cast(b, back_b);
  for (size_t i = 0; i < bits.size(); ++i) {
    const float f = bits_to_float(bits[i]);
    SCOPED_TRACE(::testing::Message() << "f32 bits 0x" << std::hex << bits[i] << std::dec << " (" << f << ")");
    const uint16_t eh = float_to_half_bits(f), eb = float_to_bfloat16_bits(f);
    EXPECT_EQ(bits16(h)[i], eh);
    EXPECT_EQ(bits16(b)[i], eb);
    EXPECT_EQ(bits32(back_h)[i], float_to_bits(half_bits_to_float(eh)));
    EXPECT_EQ(bits32(back_b)[i], float_to_bits(bfloat16_bits_to_float(eb)));
    if (std::isnan(f)) {
      EXPECT_TRUE(is_nan_half(bits16(h)[i]));
      EXPECT_TRUE(is_nan_bf16(bits16(b)[i]));
    }
  }
  // Spot checks of the rounding itself (not only agreement with core/half.h).
  EXPECT_EQ(bits16(h)[8], 0x7bffu);   // 65519.99 -> 65504
  EXPECT_EQ(bits16(h)[9], 0x7c00u);   // 65520 -> inf
  EXPECT_EQ(bits16(h)[16], 0x0000u);  // 2^-25 ties to zero (even)
  EXPECT_EQ(bits16(h)[18], 0x0002u);  // 1.5 * 2^-24 ties to 2 * 2^-24 (even)
  EXPECT_EQ(bits16(h)[21], 0x3c00u);  // 1 + 2^-11 ties down to 1
  EXPECT_EQ(bits16(h)[22], 0x3c02u);  // 1 + 3 * 2^-11 ties up
}

// Every f16 and bf16 bit pattern: to f32 is exact, back to the 16-bit type is the identity
// (NaNs stay NaN), and to the other 16-bit type matches core/half.h.
TEST(Cast, EverySixteenBitPatternRoundTrips) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  for (DType dtype : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const DType other = dtype == DType::f16 ? DType::bf16 : DType::f16;
    const Tensor src = from_bits16(all, dtype);
    Tensor f = Tensor::empty(src.shape(), DType::f32), back = Tensor::empty(src.shape(), dtype),
           cross = Tensor::empty(src.shape(), other);
    cast(src, f);
    cast(f, back);
    cast(src, cross);
    size_t bad = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      const uint16_t b = all[i];
      const float expected = dtype == DType::f16 ? half_bits_to_float(b) : bfloat16_bits_to_float(b);
      const bool nan = dtype == DType::f16 ? is_nan_half(b) : is_nan_bf16(b);
      const bool f_ok = nan ? std::isnan(bits_to_float(bits32(f)[i])) : bits32(f)[i] == float_to_bits(expected);
      const bool back_ok = nan ? (dtype == DType::f16 ? is_nan_half(bits16(back)[i]) : is_nan_bf16(bits16(back)[i]))
                               : bits16(back)[i] == b;
      const uint16_t cross_expected =
          other == DType::f16 ? float_to_half_bits(expected) : float_to_bfloat16_bits(expected);
      const bool cross_ok = nan ? (other == DType::f16 ? is_nan_half(bits16(cross)[i]) : is_nan_bf16(bits16(cross)[i]))
                                : bits16(cross)[i] == cross_expected;
      if (!(f_ok && back_ok && cross_ok) && bad++ < 5)
        ADD_FAILURE() << "pattern 0x" << std::hex << b << std::dec << ": f32 " << f_ok << " back " << back_ok
                      << " cross " << cross_ok;
    }
    EXPECT_EQ(bad, 0u);
  }
}

// A sweep over the f32 bit patterns (every 997th, both signs): cast equals core/half.h.
TEST(Cast, F32SweepMatchesHalfHeader) {
  std::vector<uint32_t> bits;
  for (uint64_t b = 0; b <= 0xffffffffull; b += 997) bits.push_back(uint32_t(b));
  const Tensor src = from_bits32(bits);
  Tensor h = Tensor::empty(src.shape(), DType::f16), bf = Tensor::empty(src.shape(), DType::bf16);
  cast(src, h);
  cast(src, bf);
  size_t bad = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    const float f = bits_to_float(bits[i]);
    const bool nan = std::isnan(f);
    const bool h_ok = nan ? is_nan_half(bits16(h)[i]) : bits16(h)[i] == float_to_half_bits(f);
    const bool b_ok = nan ? is_nan_bf16(bits16(bf)[i]) : bits16(bf)[i] == float_to_bfloat16_bits(f);
    if (!(h_ok && b_ok) && bad++ < 5) ADD_FAILURE() << "f32 bits 0x" << std::hex << bits[i];
  }
  EXPECT_EQ(bad, 0u);
}

TEST(Cast, U8ToFloatWithScale) {
  std::vector<float> values(256);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  const Tensor src = Tensor::from_floats(values, {256}, DType::u8);
  for (DType to : kFloatTypes) {
    SCOPED_TRACE(std::string(dtype_name(to)));
    Tensor plain = Tensor::empty({256}, to), scaled = Tensor::empty({256}, to);
    testing::poison(plain);
    testing::poison(scaled);
    cast(src, plain);
    cast_scaled(src, scaled, 1.0f / 255.0f);
    const std::vector<float> p = plain.to_floats(), s = scaled.to_floats();
    for (int i = 0; i < 256; ++i) {
      float expected_plain = float(i), expected_scaled = float(i) * (1.0f / 255.0f);
      if (to == DType::f16) {
        expected_plain = half_bits_to_float(float_to_half_bits(expected_plain));
        expected_scaled = half_bits_to_float(float_to_half_bits(expected_scaled));
      } else if (to == DType::bf16) {
        expected_plain = bfloat16_bits_to_float(float_to_bfloat16_bits(expected_plain));
        expected_scaled = bfloat16_bits_to_float(float_to_bfloat16_bits(expected_scaled));
      }
      EXPECT_EQ(p[size_t(i)], expected_plain) << i;
      EXPECT_EQ(s[size_t(i)], expected_scaled) << i;
    }
    EXPECT_EQ(s[255], 1.0f);  // 255 * float(1/255) rounds to exactly 1 in every type
  }
}

// ---- The case table: bit for bit against the reference on every device ----------------------------

// src (cast, or cast_scaled from u8) into an output of dtype `to`, against cpu::ref::cast.
OpCase cast_case(std::string description, DType to, float scale, std::function<Tensor(Rng&)> make_source) {
  OpCase k;
  k.op = "cast";
  k.description = std::move(description);
  k.outputs = {{.name = "dst", .exact = true}};
  k.make_inputs = [make_source](Rng& rng) { return OpInputs({make_source(rng)}); };
  k.reference = [=](const OpInputs& i) {
    const Tensor& src = i.tensors[0];
    Tensor dst = Tensor::empty(src.shape(), to);
    testing::with_type(to, [&](auto d) {
      using D = typename decltype(d)::type;
      if (src.dtype() == DType::u8) {
        cpu::ref::cast(src.data_as<uint8_t>(), dst.data_as<D>(), src.numel(), scale);
      } else {
        testing::with_type(src.dtype(), [&](auto s) {
          using S = typename decltype(s)::type;
          cpu::ref::cast(src.data_as<S>(), dst.data_as<D>(), src.numel());
        });
      }
    });
    return OpOutputs{dst};
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    if (i.tensors[0].dtype() == DType::u8)
      cast_scaled(i.tensors[0], o[0], scale);
    else
      cast(i.tensors[0], o[0]);
  };
  return k;
}

// The first `skip` elements dropped: n % 8 != 0, the scalar tails (test_cuda_unaligned.cpp covers
// unaligned pointers).
Tensor tail(const Tensor& src, int64_t skip) {
  Tensor t = Tensor::empty({src.numel() - skip}, src.dtype());
  std::memcpy(t.data(), static_cast<const char*>(src.data()) + skip * int64_t(dtype_size(src.dtype())), t.nbytes());
  return t;
}

std::vector<OpCase> cast_cases() {
  std::vector<OpCase> cases;
  // Every pair of float types on random values, beyond f16's range too.
  for (int64_t n : {1, 3, 7, 17, 33, 4099})
    for (DType from : kFloatTypes)
      for (DType to : kFloatTypes) {
        OpCase k = cast_case(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)) + " random [" +
                                 std::to_string(n) + "]",
                             to, 1.0f, [=](Rng& rng) { return testing::random_tensor(rng, {n}, from, -70000, 70000); });
        k.bytes = double(n * int64_t(dtype_size(from) + dtype_size(to)));
        cases.push_back(std::move(k));
      }
  // Special values and bit patterns: the special f32 values and a sweep of f32 patterns, every
  // f16 and bf16 pattern, every byte (scaled by 1/255).
  struct Source {
    const char* name;
    std::function<Tensor()> make;
  };
  const Source sources[] = {
      {"f32 special + sweep",
       [] {
         std::vector<uint32_t> bits = special_floats();
         for (uint64_t b = 0; b <= 0xffffffffull; b += 4099) bits.push_back(uint32_t(b));
         return from_bits32(bits);
       }},
      {"every f16 pattern", [] { return from_bits16(every_pattern16(), DType::f16); }},
      {"every bf16 pattern", [] { return from_bits16(every_pattern16(), DType::bf16); }},
      {"u8 0..255 x 1/255", [] {
         std::vector<float> bytes(1000);
         for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = float(i % 256);
         return Tensor::from_floats(bytes, {1000}, DType::u8);
       }}};
  for (const Source& source : sources)
    for (DType to : kFloatTypes)
      for (int64_t skip : {0, 1})
        cases.push_back(cast_case(std::string(source.name) + " -> " + std::string(dtype_name(to)) + " skip " + std::to_string(skip),
                                  to, 1.0f / 255.0f,
                                  [make = source.make, skip](Rng&) { return tail(make(), skip); }));
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Cast", "", cast_cases);

TEST(Cast, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32), wrong_shape = Tensor::zeros({3, 2}, DType::f16);
  Tensor integers = Tensor::zeros({2, 3}, DType::i32), bytes = Tensor::zeros({2, 3}, DType::u8);
  Tensor half = Tensor::zeros({2, 3}, DType::f16);
  testing::expect_error_containing([&] { cast(x, wrong_shape); }, "cast: dst has shape [3, 2], expected [2, 3]");
  EXPECT_THROW(cast(integers, x), Error);        // i32 source
  EXPECT_THROW(cast(x, bytes), Error);           // to u8 is not a cast we offer
  EXPECT_THROW(cast_scaled(x, half, 2.0f), Error);  // scale needs a u8 source
  EXPECT_THROW(cast_scaled(bytes, integers, 1.0f), Error);
}

// PyTorch's own rounding (x.half(), x.bfloat16()) on values at every rounding boundary:
// bit-for-bit the same results.
TEST(Cast, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("cast");
  const Tensor x = golden.tensor("x");
  for (DType dtype : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    Tensor narrow = Tensor::empty(x.shape(), dtype), back = Tensor::empty(x.shape(), DType::f32);
    cast(x, narrow);
    cast(narrow, back);
    const std::vector<double> expected = golden.doubles(dtype == DType::f16 ? "f16" : "bf16");
    EXPECT_TRUE(testing::all_close(back, expected, {0.0, 0.0}));
  }
}

}  // namespace
}  // namespace sg
