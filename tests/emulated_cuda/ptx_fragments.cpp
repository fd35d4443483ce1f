// Warp-collective PTX instructions over one warp's registers; see ptx_fragments.h for the contract.
// The fragment layouts are taken from the PTX ISA's tables; the names group / thread_in_group are
// the ISA's groupID = %laneid >> 2 and threadID_in_group = %laneid % 4.
#include "tests/emulated_cuda/ptx_fragments.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace sg_emu::ptx {
namespace {

// ---------------------------------------------------------------------------------------------
// 16-bit floating-point formats

// A binary floating-point format narrower than float: 1 sign bit, then the exponent field, then
// fraction_bits fraction bits. Both f16 and bf16 are covered by the same rounding code below.
struct NarrowFormat {
  int fraction_bits;
  int exponent_bias;
  uint32_t exponent_field_all_ones;  // the field value that marks infinity and NaN

  int min_normal_exponent() const { return 1 - exponent_bias; }
  int max_finite_exponent() const { return int(exponent_field_all_ones) - 1 - exponent_bias; }
  uint16_t infinity_bits() const { return uint16_t(exponent_field_all_ones << fraction_bits); }
};

constexpr NarrowFormat kF16{10, 15, 0x1F};
constexpr NarrowFormat kBf16{7, 127, 0xFF};

constexpr uint16_t kSignBit = 0x8000;
// The quiet NaN a NaN input turns into; NaN payloads are not modelled.
constexpr uint16_t kQuietNaN = 0x7FFF;

// Rounds a float to the nearest value of `format`, ties to the even encoding, overflowing to
// infinity. Works on the exact value in double: a float and every quantum used here (powers of two
// from 2^-133 up) are exact in double, so each step below is exact and there is a single rounding.
uint16_t round_to_nearest_even(float value, const NarrowFormat& format) {
  if (std::isnan(value)) return kQuietNaN;
  const uint16_t sign = std::signbit(value) ? kSignBit : 0;
  const double magnitude = std::fabs(double(value));
  if (std::isinf(magnitude)) return sign | format.infinity_bits();
  if (magnitude == 0.0) return sign;

  // Exponent of the leading bit (magnitude is in [2^exponent, 2^(exponent + 1))). Below the normal
  // range the spacing of representable values stays that of the smallest binade: the subnormals.
  int frexp_exponent = 0;
  std::frexp(magnitude, &frexp_exponent);
  const int exponent = std::max(frexp_exponent - 1, format.min_normal_exponent());
  if (exponent > format.max_finite_exponent()) return sign | format.infinity_bits();

  // Count the magnitude in units of the spacing (quantum) of this binade and round that count to an
  // integer, ties to even: the count's parity is the parity of the encoding's last bit.
  const double quantum = std::ldexp(1.0, exponent - format.fraction_bits);
  const double units = magnitude / quantum;
  double whole_units = std::floor(units);
  const double remainder = units - whole_units;
  const bool whole_units_odd = (uint32_t(whole_units) & 1u) != 0;
  if (remainder > 0.5 || (remainder == 0.5 && whole_units_odd)) whole_units += 1.0;

  // Encoding: in a normal binade the count is 2^fraction_bits plus the fraction, and the implicit
  // leading bit adds one to the exponent field, so the bits are ((exponent - min_normal) <<
  // fraction_bits) + count. The same sum gives field 0 for subnormals (count < 2^fraction_bits),
  // and a count that rounded up to 2^(fraction_bits + 1) carries into the next exponent by itself,
  // up to exactly the infinity encoding when the largest binade overflows.
  const uint32_t bits =
      (uint32_t(exponent - format.min_normal_exponent()) << format.fraction_bits) + uint32_t(whole_units);
  if (bits >= format.infinity_bits()) return sign | format.infinity_bits();
  return uint16_t(sign | bits);
}

float decode(uint16_t bits, const NarrowFormat& format) {
  const bool negative = (bits & kSignBit) != 0;
  const uint32_t fraction_mask = (1u << format.fraction_bits) - 1u;
  const uint32_t fraction = bits & fraction_mask;
  const uint32_t exponent_field = (bits >> format.fraction_bits) & format.exponent_field_all_ones;
  double magnitude = 0.0;
  if (exponent_field == format.exponent_field_all_ones) {
    if (fraction != 0) return std::copysign(std::numeric_limits<float>::quiet_NaN(), negative ? -1.0f : 1.0f);
    magnitude = std::numeric_limits<double>::infinity();
  } else if (exponent_field == 0) {
    // Subnormal: no implicit leading bit, exponent of the smallest normal binade.
    magnitude = std::ldexp(double(fraction), format.min_normal_exponent() - format.fraction_bits);
  } else {
    const int exponent = int(exponent_field) - format.exponent_bias;
    magnitude = std::ldexp(double((1u << format.fraction_bits) | fraction), exponent - format.fraction_bits);
  }
  // Every finite f16 and bf16 value is exact in float, so this narrowing does not round.
  return float(negative ? -magnitude : magnitude);
}

// ---------------------------------------------------------------------------------------------
// mma

double decode_mma_input(MmaInput in, uint16_t bits) {
  switch (in) {
    case MmaInput::f16:
      return f16_to_float(bits);
    case MmaInput::bf16:
      return bf16_to_float(bits);
  }
  throw std::invalid_argument("mma.sync: unknown input type " + std::to_string(int(in)));
}

// Element `index` of a lane's fragment lives in register index / 2, low half first.
uint16_t fragment_element(const uint32_t* registers, int index) {
  const uint32_t word = registers[index / 2];
  return uint16_t(index % 2 == 0 ? word & 0xFFFFu : word >> 16);
}

struct MatrixPosition {
  int row;
  int col;
};

// The PTX ISA's fragment tables for the f16/bf16 shapes m16n8k16 and m16n8k8 with f32 accumulators.
// The m16n8k8 tables are exactly the first halves of the m16n8k16 ones (A elements a0..a3, B
// elements b0..b1), so one set of formulas serves both shapes.

// A (16 x K, row-major "row"): a0,a1 and a4,a5 are in row groupID, a2,a3 and a6,a7 in row
// groupID + 8; a4..a7 are the second 8 columns.
MatrixPosition a_element_position(int lane, int index) {
  const int group = lane >> 2;
  const int thread_in_group = lane % 4;
  const bool lower_rows = index == 2 || index == 3 || index == 6 || index == 7;
  const bool upper_k = index >= 4;
  return {group + (lower_rows ? 8 : 0), thread_in_group * 2 + (index & 1) + (upper_k ? 8 : 0)};
}

// B (K x 8, column-major "col"): a lane holds two consecutive k of column groupID per register.
MatrixPosition b_element_position(int lane, int index) {
  const int group = lane >> 2;
  const int thread_in_group = lane % 4;
  const bool upper_k = index >= 2;
  return {thread_in_group * 2 + (index & 1) + (upper_k ? 8 : 0), group};
}

// C and D (16 x 8 floats): c0,c1 in row groupID, c2,c3 in row groupID + 8.
MatrixPosition accumulator_position(int lane, int index) {
  const int group = lane >> 2;
  const int thread_in_group = lane % 4;
  return {group + (index >= 2 ? 8 : 0), thread_in_group * 2 + (index & 1)};
}

constexpr int kMmaM = 16;
constexpr int kMmaN = 8;
constexpr int kAccumulatorsPerLane = 4;

// d = a * b + c for M = 16, N = 8 and K = 8 or 16. Gathers every operand into plain matrices before
// writing d, so c and d may be the same registers.
template <int K>
void mma_m16n8(MmaInput in, const uint32_t (&a)[kWarpSize][K / 4], const uint32_t (&b)[kWarpSize][K / 8],
               const float (&c)[kWarpSize][kAccumulatorsPerLane], float (&d)[kWarpSize][kAccumulatorsPerLane]) {
  constexpr int kAElementsPerLane = K / 2;  // 16 * K elements over 32 lanes
  constexpr int kBElementsPerLane = K / 4;  // K * 8 elements over 32 lanes
  double a_matrix[kMmaM][K];
  double b_matrix[K][kMmaN];
  double c_matrix[kMmaM][kMmaN];
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int index = 0; index < kAElementsPerLane; ++index) {
      const MatrixPosition at = a_element_position(lane, index);
      a_matrix[at.row][at.col] = decode_mma_input(in, fragment_element(a[lane], index));
    }
    for (int index = 0; index < kBElementsPerLane; ++index) {
      const MatrixPosition at = b_element_position(lane, index);
      b_matrix[at.row][at.col] = decode_mma_input(in, fragment_element(b[lane], index));
    }
    for (int index = 0; index < kAccumulatorsPerLane; ++index) {
      const MatrixPosition at = accumulator_position(lane, index);
      c_matrix[at.row][at.col] = c[lane][index];
    }
  }
  // The products of two f16 or two bf16 values are exact in double; the sum is done in double and
  // rounded once to float. The tensor core's own summation order and rounding are not modelled.
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int index = 0; index < kAccumulatorsPerLane; ++index) {
      const MatrixPosition at = accumulator_position(lane, index);
      double sum = c_matrix[at.row][at.col];
      for (int k = 0; k < K; ++k) sum += a_matrix[at.row][k] * b_matrix[k][at.col];
      d[lane][index] = float(sum);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ldmatrix

constexpr int kLdmatrixRows = 8;
constexpr int kLdmatrixCols = 8;
constexpr std::size_t kLdmatrixRowBytes = kLdmatrixCols * sizeof(uint16_t);

std::string ldmatrix_name(int count, bool transpose) {
  return "ldmatrix.sync.aligned.m8n8.x" + std::to_string(count) + (transpose ? ".trans" : "") + ".shared.b16";
}

}  // namespace

void mma_m16n8k16(MmaInput in, const uint32_t (&a)[kWarpSize][4], const uint32_t (&b)[kWarpSize][2],
                  const float (&c)[kWarpSize][4], float (&d)[kWarpSize][4]) {
  mma_m16n8<16>(in, a, b, c, d);
}

void mma_m16n8k8(MmaInput in, const uint32_t (&a)[kWarpSize][2], const uint32_t (&b)[kWarpSize][1],
                 const float (&c)[kWarpSize][4], float (&d)[kWarpSize][4]) {
  mma_m16n8<8>(in, a, b, c, d);
}

void ldmatrix(int count, bool transpose, const uint16_t* const (&row_address)[kWarpSize],
              uint32_t (&out)[kWarpSize][4]) {
  if (count != 1 && count != 2 && count != 4) {
    throw std::invalid_argument(ldmatrix_name(count, transpose) + ": the matrix count must be 1, 2 or 4, not " +
                                std::to_string(count));
  }
  // Read every row before writing any register, so a bad address leaves out unchanged.
  uint16_t matrices[4][kLdmatrixRows][kLdmatrixCols];
  for (int matrix = 0; matrix < count; ++matrix) {
    for (int row = 0; row < kLdmatrixRows; ++row) {
      const int lane = matrix * kLdmatrixRows + row;
      const uint16_t* address = row_address[lane];
      if (address == nullptr || reinterpret_cast<std::uintptr_t>(address) % kLdmatrixRowBytes != 0) {
        std::ostringstream message;
        message << ldmatrix_name(count, transpose) << ": lane " << lane << " gives row address "
                << static_cast<const void*>(address) << ", which is not a 16-byte aligned shared-memory address";
        throw std::invalid_argument(message.str());
      }
      std::memcpy(matrices[matrix][row], address, kLdmatrixRowBytes);
    }
  }
  // Each lane receives, per matrix, two consecutive elements of row groupID (columns
  // 2 * threadID_in_group and + 1); with .trans it receives the same positions of the transposed
  // matrix, i.e. two consecutive rows of column groupID.
  for (int lane = 0; lane < kWarpSize; ++lane) {
    const int group = lane >> 2;
    const int thread_in_group = lane % 4;
    for (int matrix = 0; matrix < count; ++matrix) {
      const auto& m = matrices[matrix];
      const int first = thread_in_group * 2;
      const uint16_t low = transpose ? m[first][group] : m[group][first];
      const uint16_t high = transpose ? m[first + 1][group] : m[group][first + 1];
      out[lane][matrix] = uint32_t(low) | (uint32_t(high) << 16);
    }
  }
}

uint16_t float_to_f16_rn(float f) { return round_to_nearest_even(f, kF16); }

float f16_to_float(uint16_t h) { return decode(h, kF16); }

uint16_t float_to_bf16_rn(float f) { return round_to_nearest_even(f, kBf16); }

// bf16 is by definition the upper half of a float's bits, so widening is a shift (NaN payloads and
// all); no rounding can happen in this direction.
float bf16_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

}  // namespace sg_emu::ptx
