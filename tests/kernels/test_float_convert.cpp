// The shared f16/bf16 <-> f32 conversion layer of the fast CPU paths (kernels/cpu/float_convert.h)
// against core/half.h: every 16-bit pattern, random and special floats (ties, subnormals,
// infinities, overflow, NaN), tail lengths, the parallel variants and the RAII helpers. Half is
// checked on the path the CPU picks, on the portable path and on F16C where the CPU has it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::Rng;

bool same_or_both_nan(float actual, float expected) {
  if (std::isnan(expected)) return std::isnan(actual) && std::signbit(actual) == std::signbit(expected);
  return float_to_bits(actual) == float_to_bits(expected);
}

struct HalfPath {
  std::string name;
  void (*to)(const Half*, float*, int64_t);
  void (*from)(const float*, Half*, int64_t);
};

std::vector<HalfPath> half_paths() {
  std::vector<HalfPath> paths = {
      {"dispatched", [](const Half* s, float* d, int64_t n) { cpu::to_f32(s, d, n); },
       [](const float* s, Half* d, int64_t n) { cpu::from_f32(s, d, n); }},
      {"portable", cpu::detail::half_to_f32_portable, cpu::detail::f32_to_half_portable}};
  if (cpu::detail::have_f16c()) paths.push_back({"f16c", cpu::detail::half_to_f32_f16c, cpu::detail::f32_to_half_f16c});
  return paths;
}

// Floats that exercise the rounding: random bit patterns (every class, NaN payloads included),
// random values in the f16 range, f32 subnormals, and the specials listed below.
std::vector<float> test_floats(Rng& rng) {
  std::vector<float> v;
  for (int i = 0; i < 200000; ++i) v.push_back(bits_to_float(uint32_t(rng.engine()())));
  for (int i = 0; i < 100000; ++i) v.push_back(rng.uniform(-70000.0f, 70000.0f));
  for (int i = 0; i < 100000; ++i) v.push_back(rng.uniform(-1e-4f, 1e-4f));  // f16 subnormal range
  for (int i = 0; i < 10000; ++i) v.push_back(bits_to_float(uint32_t(rng.engine()()) & 0x807fffffu));
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 65504.0f, 65519.99f, 65520.0f,
                  -65520.0f, 1e10f, -1e30f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()})
    v.push_back(f);
  for (uint32_t b : {0x7f800001u, 0x7fc00001u, 0xffc00000u, 0x7fbfffffu, 0x7fffffffu, 0xffffffffu, 0xff800001u,
                     0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu})
    v.push_back(bits_to_float(b));
  return v;
}

// Every midpoint between neighbouring finite f16 values (including 0 and the subnormals, and
// 65520 between the largest finite value and infinity), one f32 ulp either side, both signs.
std::vector<float> half_ties() {
  std::vector<float> v;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const float lo = half_bits_to_float(uint16_t(h));
    const float mid = h + 1 < 0x7c00u ? (lo + half_bits_to_float(uint16_t(h + 1))) * 0.5f : 65520.0f;
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      v.push_back(f);
      v.push_back(-f);
    }
  }
  return v;
}

// Every bf16 midpoint (low 16 bits 0x8000) and its neighbours, for every upper half.
std::vector<float> bfloat16_ties() {
  std::vector<float> v;
  for (uint32_t top = 0; top < 0x10000u; ++top)
    for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u}) v.push_back(bits_to_float((top << 16) | low));
  return v;
}

TEST(FloatConvert, HalfToF32_EveryPatternMatchesHalfHeader) {
  std::vector<Half> all(0x10000);
  for (uint32_t b = 0; b < 0x10000u; ++b) all[b].bits = uint16_t(b);
  for (const HalfPath& path : half_paths()) {
    SCOPED_TRACE(path.name);
    std::vector<float> out(all.size());
    path.to(all.data(), out.data(), int64_t(all.size()));
    size_t bad = 0;
    for (uint32_t b = 0; b < 0x10000u; ++b)
      if (!same_or_both_nan(out[b], half_bits_to_float(uint16_t(b))) && bad++ < 5)
        ADD_FAILURE() << std::hex << "f16 0x" << b << " -> 0x" << float_to_bits(out[b]);
    EXPECT_EQ(bad, 0u);
  }
}

TEST(FloatConvert, BFloat16ToF32_EveryPatternMatchesHalfHeader) {
  std::vector<BFloat16> all(0x10000);
  for (uint32_t b = 0; b < 0x10000u; ++b) all[b].bits = uint16_t(b);
  std::vector<float> out(all.size());
  cpu::to_f32(all.data(), out.data(), int64_t(all.size()));
  for (uint32_t b = 0; b < 0x10000u; ++b)
    ASSERT_EQ(float_to_bits(out[b]), float_to_bits(bfloat16_bits_to_float(uint16_t(b)))) << std::hex << b;
}

// f32 -> 16 bits is bit-exact everywhere, NaN included (the quiet NaN of core/half.h).
template <class Convert>
size_t count_mismatches(const std::vector<float>& in, Convert convert, uint16_t (*expected)(float)) {
  std::vector<uint16_t> out(in.size(), 0xdeadu);
  convert(in.data(), out.data(), int64_t(in.size()));
  size_t bad = 0;
  for (size_t i = 0; i < in.size(); ++i)
    if (out[i] != expected(in[i]) && bad++ < 5)
      ADD_FAILURE() << std::hex << "f32 0x" << float_to_bits(in[i]) << " -> 0x" << out[i] << ", expected 0x"
                    << expected(in[i]);
  return bad;
}

TEST(FloatConvert, F32ToHalf_RandomTiesSubnormalsOverflowMatchHalfHeader) {
  Rng rng;
  SG_TRACE_SEED(rng);
  std::vector<float> in = test_floats(rng);
  const std::vector<float> ties = half_ties();
  in.insert(in.end(), ties.begin(), ties.end());
  for (const HalfPath& path : half_paths()) {
    SCOPED_TRACE(path.name);
    const auto convert = [&](const float* s, uint16_t* d, int64_t n) { path.from(s, reinterpret_cast<Half*>(d), n); };
    EXPECT_EQ(count_mismatches(in, convert, float_to_half_bits), 0u);
  }
  // The rules themselves, so a shared mistake with core/half.h would show.
  std::vector<Half> h(6);
  const float cases[] = {65519.99f, 65520.0f, 2.98023223876953125e-8f, 8.940696716308594e-8f, 1.00048828125f,
                         1.00146484375f};
  cpu::from_f32(cases, h.data(), 6);
  const uint16_t expected[] = {0x7bffu, 0x7c00u, 0x0000u, 0x0002u, 0x3c00u, 0x3c02u};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(h[size_t(i)].bits, expected[i]) << i;
}

TEST(FloatConvert, F32ToBFloat16_RandomTiesSubnormalsOverflowMatchHalfHeader) {
  Rng rng;
  SG_TRACE_SEED(rng);
  std::vector<float> in = test_floats(rng);
  const std::vector<float> ties = bfloat16_ties();
  in.insert(in.end(), ties.begin(), ties.end());
  const auto convert = [](const float* s, uint16_t* d, int64_t n) {
    cpu::from_f32(s, reinterpret_cast<BFloat16*>(d), n);
  };
  EXPECT_EQ(count_mismatches(in, convert, float_to_bfloat16_bits), 0u);
  std::vector<BFloat16> b(4);
  const float cases[] = {std::numeric_limits<float>::max(), bits_to_float(0x3f808000u), bits_to_float(0x3f818000u),
                         bits_to_float(0x7f800001u)};
  cpu::from_f32(cases, b.data(), 4);
  EXPECT_EQ(b[0].bits, 0x7f80u);  // overflows to infinity
  EXPECT_EQ(b[1].bits, 0x3f80u);  // tie to even, down
  EXPECT_EQ(b[2].bits, 0x3f82u);  // tie to even, up
  EXPECT_EQ(b[3].bits, 0x7fc0u);  // signalling NaN comes back quiet
}

// Tails: exactly n elements are written, whatever n is relative to the vector width.
template <class T>
void check_lengths(const char* name, void (*to)(const T*, float*, int64_t), void (*from)(const float*, T*, int64_t),
                   float (*expected_to)(uint16_t), uint16_t (*expected_from)(float)) {
  SCOPED_TRACE(name);
  Rng rng;
  SG_TRACE_SEED(rng);
  constexpr int64_t kGuard = 16;
  for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 1000}) {
    SCOPED_TRACE(n);
    std::vector<T> src(size_t(n + kGuard));
    std::vector<float> values(size_t(n + kGuard));
    for (auto& v : values) v = rng.uniform(-100.0f, 100.0f);
    for (size_t i = 0; i < src.size(); ++i) src[i].bits = uint16_t(rng.integer(0, 0xffff));
    std::vector<float> f(size_t(n + kGuard), 12345.0f);
    to(src.data(), f.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(same_or_both_nan(f[size_t(i)], expected_to(src[size_t(i)].bits))) << i;
    for (int64_t i = n; i < n + kGuard; ++i) EXPECT_EQ(f[size_t(i)], 12345.0f) << i;
    std::vector<T> h(size_t(n + kGuard), T{0xabcdu});
    from(values.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(h[size_t(i)].bits, expected_from(values[size_t(i)])) << i;
    for (int64_t i = n; i < n + kGuard; ++i) EXPECT_EQ(h[size_t(i)].bits, 0xabcdu) << i;
  }
}

TEST(FloatConvert, TailLengths) {
  for (const HalfPath& path : half_paths())
    check_lengths<Half>(path.name.c_str(), path.to, path.from, half_bits_to_float, float_to_half_bits);
  check_lengths<Half>("parallel", cpu::to_f32_parallel<Half>, cpu::from_f32_parallel<Half>, half_bits_to_float,
                      float_to_half_bits);
  check_lengths<BFloat16>(
      "bf16", [](const BFloat16* s, float* d, int64_t n) { cpu::to_f32(s, d, n); },
      [](const float* s, BFloat16* d, int64_t n) { cpu::from_f32(s, d, n); }, bfloat16_bits_to_float,
      float_to_bfloat16_bits);
  check_lengths<BFloat16>("bf16 parallel", cpu::to_f32_parallel<BFloat16>, cpu::from_f32_parallel<BFloat16>,
                          bfloat16_bits_to_float, float_to_bfloat16_bits);
}

// Sizes around the parallel threshold and a ragged last block, serial and parallel agreeing.
template <class T>
void check_parallel(float (*expected_to)(uint16_t), uint16_t (*expected_from)(float)) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (int64_t n : {cpu::kConvertParallelMin - 1, cpu::kConvertParallelMin, 3 * cpu::kConvertParallelMin + 5}) {
    SCOPED_TRACE(n);
    std::vector<T> src(static_cast<size_t>(n));
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      src[size_t(i)].bits = uint16_t(rng.integer(0, 0xffff));
      values[size_t(i)] = rng.uniform(-3.0f, 3.0f);
    }
    std::vector<float> f(size_t(n + 1), -7.0f);
    cpu::to_f32_parallel(src.data(), f.data(), n);
    size_t bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += !same_or_both_nan(f[size_t(i)], expected_to(src[size_t(i)].bits));
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(f[size_t(n)], -7.0f);
    std::vector<T> h(size_t(n + 1), T{0x1234u});
    cpu::from_f32_parallel(values.data(), h.data(), n);
    bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += h[size_t(i)].bits != expected_from(values[size_t(i)]);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(h[size_t(n)].bits, 0x1234u);
  }
}

TEST(FloatConvert, ParallelVariantsMatchSerial) {
  check_parallel<Half>(half_bits_to_float, float_to_half_bits);
  check_parallel<BFloat16>(bfloat16_bits_to_float, float_to_bfloat16_bits);
}

TEST(FloatConvert, F32InputAndOutput) {
  // float: no copy, written in place.
  std::vector<float> xf = {1.0f, -2.5f, 3.25f};
  const cpu::F32Input<float> in_f(xf.data(), 3);
  EXPECT_EQ(in_f.get(), xf.data());
  cpu::F32Output<float> out_f(xf.data(), 3);
  EXPECT_EQ(out_f.get(), xf.data());
  out_f.get()[1] = 7.0f;
  out_f.store();
  EXPECT_EQ(xf[1], 7.0f);

  // Half: a converted copy; the output reaches the array only at store().
  std::vector<Half> xh = {Half{float_to_half_bits(1.5f)}, Half{float_to_half_bits(-0.125f)}, Half{0x7c00u}};
  const cpu::F32Input<Half> in_h(xh.data(), 3);
  EXPECT_NE(static_cast<const void*>(in_h.get()), static_cast<const void*>(xh.data()));
  EXPECT_EQ(in_h.get()[0], 1.5f);
  EXPECT_EQ(in_h.get()[1], -0.125f);
  EXPECT_EQ(in_h.get()[2], std::numeric_limits<float>::infinity());
  std::vector<BFloat16> yb(3, BFloat16{0xffffu});
  cpu::F32Output<BFloat16> out_b(yb.data(), 3);
  for (int i = 0; i < 3; ++i) out_b.get()[i] = in_h.get()[i] * 2.0f;
  EXPECT_EQ(yb[0].bits, 0xffffu);
  out_b.store();
  EXPECT_EQ(yb[0].bits, float_to_bfloat16_bits(3.0f));
  EXPECT_EQ(yb[1].bits, float_to_bfloat16_bits(-0.25f));
  EXPECT_EQ(yb[2].bits, 0x7f80u);

  // Empty arrays are fine.
  const cpu::F32Input<Half> empty_in(nullptr, 0);
  cpu::F32Output<Half> empty_out(nullptr, 0);
  empty_out.store();
}

TEST(FloatConvert, RowHelpers) {
  std::vector<float> rf = {1.0f, 2.0f};
  float scratch[2] = {0.0f, 0.0f};
  EXPECT_EQ(cpu::f32_row(rf.data(), scratch, 2), rf.data());
  EXPECT_EQ(cpu::f32_out_row(rf.data(), scratch), rf.data());
  std::vector<BFloat16> rb = {BFloat16{float_to_bfloat16_bits(4.0f)}, BFloat16{float_to_bfloat16_bits(-8.0f)}};
  const float* loaded = cpu::f32_row(rb.data(), scratch, 2);
  EXPECT_EQ(loaded, scratch);
  EXPECT_EQ(scratch[1], -8.0f);
  float* out = cpu::f32_out_row(rb.data(), scratch);
  EXPECT_EQ(out, scratch);
  out[0] = 0.5f;
  cpu::store_f32_row(out, rb.data(), 2);
  EXPECT_EQ(rb[0].bits, float_to_bfloat16_bits(0.5f));
}

}  // namespace
}  // namespace sg
