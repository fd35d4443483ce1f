// Tests of the emulated warp-collective PTX instructions (mma.sync m16n8k16 / m16n8k8, ldmatrix) and
// of the f16/bf16 conversions they rely on.
//
// The fragment layouts are written here a second time, as plain index formulas taken from the PTX
// ISA's tables, independently of ptx_fragments.cpp: registers are filled and read back through these
// formulas, and the results are compared with plain loops over whole matrices. A few positions are
// also checked against literal values read off the ISA's figures, so that a mistake shared by both
// formula sets still shows.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/emulated_cuda/ptx_fragments.h"

namespace sg_emu::ptx {
namespace {

// ---------------------------------------------------------------------------------------------
// Randomness: a fresh seed per test, printed on failure; SG_TEST_SEED replays one (the same
// convention as the rest of the test suite).

class SeededRandom {
 public:
  SeededRandom() {
    const char* fixed = std::getenv("SG_TEST_SEED");
    seed_ = fixed ? std::strtoull(fixed, nullptr, 10)
                  : (uint64_t(std::random_device{}()) << 32) ^ uint64_t(std::random_device{}());
    engine_.seed(seed_);
  }
  uint64_t seed() const { return seed_; }
  std::mt19937_64& engine() { return engine_; }
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(engine_); }

 private:
  uint64_t seed_ = 0;
  std::mt19937_64 engine_;
};

#define PTX_TRACE_SEED(random) SCOPED_TRACE(::testing::Message() << "replay with SG_TEST_SEED=" << (random).seed())

// ---------------------------------------------------------------------------------------------
// The PTX ISA's fragment tables, written once more. groupID = lane / 4, threadID_in_group = lane % 4;
// `half` 0 is the low 16 bits of a register, 1 the high 16 bits.

struct Cell {
  int row;
  int col;
  bool operator==(const Cell&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Cell& cell) {
  return os << "(" << cell.row << ", " << cell.col << ")";
}

int group_id(int lane) { return lane / 4; }
int thread_id_in_group(int lane) { return lane % 4; }

// mma.m16n8k16, A (16 x 16, row): registers hold a0a1, a2a3, a4a5, a6a7; odd registers are rows + 8,
// registers 2 and 3 are columns + 8.
Cell k16_a_cell(int lane, int reg, int half) {
  return {group_id(lane) + 8 * (reg % 2), 2 * thread_id_in_group(lane) + half + 8 * (reg / 2)};
}
// mma.m16n8k16, B (16 x 8, col): registers hold b0b1, b2b3; register 1 is rows (k) + 8.
Cell k16_b_cell(int lane, int reg, int half) { return {2 * thread_id_in_group(lane) + half + 8 * reg, group_id(lane)}; }
// mma.m16n8k8, A (16 x 8, row): registers hold a0a1, a2a3; register 1 is rows + 8.
Cell k8_a_cell(int lane, int reg, int half) { return {group_id(lane) + 8 * reg, 2 * thread_id_in_group(lane) + half}; }
// mma.m16n8k8, B (8 x 8, col): one register, b0b1.
Cell k8_b_cell(int lane, int half) { return {2 * thread_id_in_group(lane) + half, group_id(lane)}; }
// C and D of both shapes (16 x 8 f32): c0 c1 in row groupID, c2 c3 in row groupID + 8.
Cell accumulator_cell(int lane, int index) {
  return {group_id(lane) + 8 * (index / 2), 2 * thread_id_in_group(lane) + index % 2};
}
// ldmatrix m8n8 .b16: each lane's register of one matrix; .trans swaps row and column.
Cell ldmatrix_cell(int lane, int half, bool transpose) {
  const Cell plain{group_id(lane), 2 * thread_id_in_group(lane) + half};
  return transpose ? Cell{plain.col, plain.row} : plain;
}

uint16_t half_of(uint32_t reg, int half) { return uint16_t(half == 0 ? reg & 0xFFFFu : reg >> 16); }
void set_half(uint32_t& reg, int half, uint16_t value) {
  if (half == 0) {
    reg = (reg & 0xFFFF0000u) | value;
  } else {
    reg = (reg & 0x0000FFFFu) | (uint32_t(value) << 16);
  }
}

// ---------------------------------------------------------------------------------------------
// Matrices of 16-bit inputs, their exact values, and the plain reference product.

const char* input_name(MmaInput in) { return in == MmaInput::f16 ? "f16" : "bf16"; }

uint16_t round_input(MmaInput in, double value) {
  return in == MmaInput::f16 ? float_to_f16_rn(float(value)) : float_to_bf16_rn(float(value));
}
double input_value(MmaInput in, uint16_t bits) {
  return in == MmaInput::f16 ? f16_to_float(bits) : bf16_to_float(bits);
}

// A test constant as a float, checking that it is exactly representable.
float exact(double value) {
  const float narrowed = float(value);
  EXPECT_EQ(double(narrowed), value) << "test constant not exact in float";
  return narrowed;
}

// Random values over a few binades, so that a wrong exponent or mantissa decoding shows.
template <int Rows, int Cols>
void fill_random_inputs(SeededRandom& random, MmaInput in, uint16_t (&bits)[Rows][Cols]) {
  for (auto& row : bits) {
    for (uint16_t& element : row) {
      element = round_input(in, random.uniform(-1.0, 1.0) * std::ldexp(1.0, int(random.integer(-6, 6))));
    }
  }
}

// A (M x K, row-major) times B (K x 8, indexed [k][n]) plus C, in double from the rounded values,
// with the scale (|c| + sum |a b|) each element's rounding error is measured against.
struct Reference {
  double value[16][8];
  double scale[16][8];
};

template <int K>
Reference reference_product(MmaInput in, const uint16_t (&a)[16][K], const uint16_t (&b)[K][8],
                            const float (&c)[16][8]) {
  Reference reference{};
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      double sum = c[m][n];
      double scale = std::fabs(c[m][n]);
      for (int k = 0; k < K; ++k) {
        const double product = input_value(in, a[m][k]) * input_value(in, b[k][n]);
        sum += product;
        scale += std::fabs(product);
      }
      reference.value[m][n] = sum;
      reference.scale[m][n] = scale;
    }
  }
  return reference;
}

// The emulation sums in double and rounds once to float: 1e-6 of the scale is a few float ulps.
constexpr double kRelativeTolerance = 1e-6;

::testing::AssertionResult accumulators_match(const float (&d)[kWarpSize][4], const Reference& reference) {
  int mismatches = 0;
  std::ostringstream details;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int index = 0; index < 4; ++index) {
      const Cell at = accumulator_cell(lane, index);
      const double expected = reference.value[at.row][at.col];
      const double tolerance = kRelativeTolerance * std::max(reference.scale[at.row][at.col], 1e-30);
      if (!(std::fabs(double(d[lane][index]) - expected) <= tolerance)) {
        if (++mismatches <= 8) {
          details << "\n  lane " << lane << " d" << index << " = D" << at << ": got " << d[lane][index] << ", expected "
                  << expected;
        }
      }
    }
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of 128 accumulators differ:" << details.str();
}

// Fills the A and B registers of every lane through the table formulas above.
void distribute_k16_inputs(const uint16_t (&a)[16][16], const uint16_t (&b)[16][8], uint32_t (&a_regs)[kWarpSize][4],
                           uint32_t (&b_regs)[kWarpSize][2]) {
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int half = 0; half < 2; ++half) {
      for (int reg = 0; reg < 4; ++reg) {
        const Cell at = k16_a_cell(lane, reg, half);
        set_half(a_regs[lane][reg], half, a[at.row][at.col]);
      }
      for (int reg = 0; reg < 2; ++reg) {
        const Cell at = k16_b_cell(lane, reg, half);
        set_half(b_regs[lane][reg], half, b[at.row][at.col]);
      }
    }
  }
}

void distribute_k8_inputs(const uint16_t (&a)[16][8], const uint16_t (&b)[8][8], uint32_t (&a_regs)[kWarpSize][2],
                          uint32_t (&b_regs)[kWarpSize][1]) {
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int half = 0; half < 2; ++half) {
      for (int reg = 0; reg < 2; ++reg) {
        const Cell at = k8_a_cell(lane, reg, half);
        set_half(a_regs[lane][reg], half, a[at.row][at.col]);
      }
      const Cell at = k8_b_cell(lane, half);
      set_half(b_regs[lane][0], half, b[at.row][at.col]);
    }
  }
}

void distribute_accumulators(const float (&c)[16][8], float (&registers)[kWarpSize][4]) {
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int index = 0; index < 4; ++index) {
      const Cell at = accumulator_cell(lane, index);
      registers[lane][index] = c[at.row][at.col];
    }
  }
}

void fill_random_accumulators(SeededRandom& random, float (&c)[16][8]) {
  for (auto& row : c) {
    for (float& element : row) element = float(random.uniform(-8.0, 8.0));
  }
}

// ---------------------------------------------------------------------------------------------
// Layout formulas

TEST(PtxFragmentsLayout, FormulasMatchPositionsReadOffTheIsaFigures) {
  // mma.m16n8k16 A: T0 holds a0,a1 = (0,0),(0,1); a2 = (8,0); a4 = (0,8); a6 = (8,8). T1 starts at column 2,
  // T4 at row 1, T31's last element is (15,15).
  EXPECT_EQ(k16_a_cell(0, 0, 0), (Cell{0, 0}));
  EXPECT_EQ(k16_a_cell(0, 0, 1), (Cell{0, 1}));
  EXPECT_EQ(k16_a_cell(0, 1, 0), (Cell{8, 0}));
  EXPECT_EQ(k16_a_cell(0, 2, 0), (Cell{0, 8}));
  EXPECT_EQ(k16_a_cell(0, 3, 0), (Cell{8, 8}));
  EXPECT_EQ(k16_a_cell(1, 0, 0), (Cell{0, 2}));
  EXPECT_EQ(k16_a_cell(4, 0, 0), (Cell{1, 0}));
  EXPECT_EQ(k16_a_cell(31, 3, 1), (Cell{15, 15}));
  // mma.m16n8k16 B: T0 holds b0,b1 = (0,0),(1,0) and b2 = (8,0); T1 starts at row 2; T4 is column 1.
  EXPECT_EQ(k16_b_cell(0, 0, 0), (Cell{0, 0}));
  EXPECT_EQ(k16_b_cell(0, 0, 1), (Cell{1, 0}));
  EXPECT_EQ(k16_b_cell(0, 1, 0), (Cell{8, 0}));
  EXPECT_EQ(k16_b_cell(1, 0, 0), (Cell{2, 0}));
  EXPECT_EQ(k16_b_cell(4, 0, 0), (Cell{0, 1}));
  EXPECT_EQ(k16_b_cell(31, 1, 1), (Cell{15, 7}));
  // mma.m16n8k8: A T0 = (0,0),(0,1) then (8,0),(8,1); B T0 = (0,0),(1,0), T5 = (2,1),(3,1).
  EXPECT_EQ(k8_a_cell(0, 1, 1), (Cell{8, 1}));
  EXPECT_EQ(k8_a_cell(31, 1, 1), (Cell{15, 7}));
  EXPECT_EQ(k8_b_cell(5, 0), (Cell{2, 1}));
  EXPECT_EQ(k8_b_cell(5, 1), (Cell{3, 1}));
  // C/D: T0 = (0,0),(0,1),(8,0),(8,1); T5 c3 = (9,3); T31 c3 = (15,7).
  EXPECT_EQ(accumulator_cell(0, 1), (Cell{0, 1}));
  EXPECT_EQ(accumulator_cell(0, 2), (Cell{8, 0}));
  EXPECT_EQ(accumulator_cell(5, 3), (Cell{9, 3}));
  EXPECT_EQ(accumulator_cell(31, 3), (Cell{15, 7}));
  // ldmatrix: T1 gets row 0 columns 2,3; T4 row 1; with .trans T1 gets rows 2,3 of column 0.
  EXPECT_EQ(ldmatrix_cell(1, 1, false), (Cell{0, 3}));
  EXPECT_EQ(ldmatrix_cell(4, 0, false), (Cell{1, 0}));
  EXPECT_EQ(ldmatrix_cell(1, 1, true), (Cell{3, 0}));
  EXPECT_EQ(ldmatrix_cell(31, 1, true), (Cell{7, 7}));
}

// Each fragment table must hand every matrix element to exactly one (lane, register, half).
TEST(PtxFragmentsLayout, EveryElementHasExactlyOneOwner) {
  auto expect_each_once = [](const char* table, int rows, int cols, const std::vector<Cell>& cells) {
    SCOPED_TRACE(table);
    std::vector<int> owners(size_t(rows * cols), 0);
    for (const Cell& cell : cells) {
      ASSERT_TRUE(cell.row >= 0 && cell.row < rows && cell.col >= 0 && cell.col < cols) << cell;
      ++owners[size_t(cell.row * cols + cell.col)];
    }
    EXPECT_TRUE(std::all_of(owners.begin(), owners.end(), [](int n) { return n == 1; }));
  };
  std::vector<Cell> a16, b16, a8, b8, acc, ld, ld_trans;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int half = 0; half < 2; ++half) {
      for (int reg = 0; reg < 4; ++reg) a16.push_back(k16_a_cell(lane, reg, half));
      for (int reg = 0; reg < 2; ++reg) b16.push_back(k16_b_cell(lane, reg, half));
      for (int reg = 0; reg < 2; ++reg) a8.push_back(k8_a_cell(lane, reg, half));
      b8.push_back(k8_b_cell(lane, half));
      acc.push_back(accumulator_cell(lane, 2 * half));
      acc.push_back(accumulator_cell(lane, 2 * half + 1));
      ld.push_back(ldmatrix_cell(lane, half, false));
      ld_trans.push_back(ldmatrix_cell(lane, half, true));
    }
  }
  expect_each_once("m16n8k16 A", 16, 16, a16);
  expect_each_once("m16n8k16 B", 16, 8, b16);
  expect_each_once("m16n8k8 A", 16, 8, a8);
  expect_each_once("m16n8k8 B", 8, 8, b8);
  expect_each_once("C/D", 16, 8, acc);
  expect_each_once("ldmatrix", 8, 8, ld);
  expect_each_once("ldmatrix .trans", 8, 8, ld_trans);
}

// ---------------------------------------------------------------------------------------------
// mma

constexpr MmaInput kInputs[] = {MmaInput::f16, MmaInput::bf16};
constexpr int kTrials = 20;

TEST(PtxFragmentsMma, M16n8k16MatchesTripleLoop) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    for (int trial = 0; trial < kTrials; ++trial) {
      uint16_t a[16][16];
      uint16_t b[16][8];
      float c[16][8];
      fill_random_inputs(random, in, a);
      fill_random_inputs(random, in, b);
      fill_random_accumulators(random, c);

      uint32_t a_regs[kWarpSize][4] = {};
      uint32_t b_regs[kWarpSize][2] = {};
      float c_regs[kWarpSize][4];
      float d_regs[kWarpSize][4];
      distribute_k16_inputs(a, b, a_regs, b_regs);
      distribute_accumulators(c, c_regs);
      mma_m16n8k16(in, a_regs, b_regs, c_regs, d_regs);
      ASSERT_TRUE(accumulators_match(d_regs, reference_product(in, a, b, c))) << "trial " << trial;
    }
  }
}

TEST(PtxFragmentsMma, M16n8k8MatchesTripleLoop) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    for (int trial = 0; trial < kTrials; ++trial) {
      uint16_t a[16][8];
      uint16_t b[8][8];
      float c[16][8];
      fill_random_inputs(random, in, a);
      fill_random_inputs(random, in, b);
      fill_random_accumulators(random, c);

      uint32_t a_regs[kWarpSize][2] = {};
      uint32_t b_regs[kWarpSize][1] = {};
      float c_regs[kWarpSize][4];
      float d_regs[kWarpSize][4];
      distribute_k8_inputs(a, b, a_regs, b_regs);
      distribute_accumulators(c, c_regs);
      mma_m16n8k8(in, a_regs, b_regs, c_regs, d_regs);
      ASSERT_TRUE(accumulators_match(d_regs, reference_product(in, a, b, c))) << "trial " << trial;
    }
  }
}

// Kernels accumulate in place (the same registers as c and d); every input must be read before d is written.
TEST(PtxFragmentsMma, AccumulatesInPlaceWhenCAndDAreTheSameRegisters) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  uint16_t a[16][16];
  uint16_t b[16][8];
  float c[16][8];
  fill_random_inputs(random, MmaInput::f16, a);
  fill_random_inputs(random, MmaInput::f16, b);
  fill_random_accumulators(random, c);
  uint32_t a_regs[kWarpSize][4] = {};
  uint32_t b_regs[kWarpSize][2] = {};
  distribute_k16_inputs(a, b, a_regs, b_regs);
  float accumulators[kWarpSize][4];
  distribute_accumulators(c, accumulators);
  mma_m16n8k16(MmaInput::f16, a_regs, b_regs, accumulators, accumulators);
  EXPECT_TRUE(accumulators_match(accumulators, reference_product(MmaInput::f16, a, b, c)));
}

// An infinity in one element of A reaches exactly its row of D; inf * 0 gives NaN as IEEE says.
TEST(PtxFragmentsMma, InfinityAndNaNReachOnlyTheirRow) {
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    const uint16_t one = round_input(in, 1.0);
    const uint16_t infinity = round_input(in, std::numeric_limits<double>::infinity());
    uint32_t a_regs[kWarpSize][4] = {};
    uint32_t b_regs[kWarpSize][2] = {};
    for (int lane = 0; lane < kWarpSize; ++lane) {
      for (int half = 0; half < 2; ++half) {
        for (int reg = 0; reg < 4; ++reg) {
          const Cell at = k16_a_cell(lane, reg, half);
          set_half(a_regs[lane][reg], half, at == Cell{3, 5} ? infinity : one);
        }
        // B is 1 except row k = 5 of column 2, which is 0: D(3, 2) = inf * 0 + ... = NaN.
        for (int reg = 0; reg < 2; ++reg) {
          const Cell at = k16_b_cell(lane, reg, half);
          set_half(b_regs[lane][reg], half, at == Cell{5, 2} ? uint16_t(0) : one);
        }
      }
    }
    const float zeros[kWarpSize][4] = {};
    float d_regs[kWarpSize][4];
    mma_m16n8k16(in, a_regs, b_regs, zeros, d_regs);
    for (int lane = 0; lane < kWarpSize; ++lane) {
      for (int index = 0; index < 4; ++index) {
        const Cell at = accumulator_cell(lane, index);
        const float got = d_regs[lane][index];
        if (at == Cell{3, 2}) {
          EXPECT_TRUE(std::isnan(got)) << "D" << at << " = " << got;
        } else if (at.row == 3) {
          EXPECT_EQ(got, std::numeric_limits<float>::infinity()) << "D" << at;
        } else {
          // Column 2 of B has one zero, so its dot products lose one term.
          EXPECT_EQ(got, at.col == 2 ? 15.0f : 16.0f) << "D" << at;
        }
      }
    }
  }
}

// Runs mma.m16n8k16 with every row of A equal to a_along_k, every column of B equal to b_along_k
// and every element of C equal to c, and checks that every element of D is `expected`.
void expect_uniform_product(MmaInput in, const double (&a_along_k)[16], const double (&b_along_k)[16], double c,
                            float expected) {
  uint16_t a[16][16];
  uint16_t b[16][8];
  float c_matrix[16][8];
  for (int k = 0; k < 16; ++k) {
    for (int m = 0; m < 16; ++m) a[m][k] = round_input(in, a_along_k[k]);
    for (int n = 0; n < 8; ++n) b[k][n] = round_input(in, b_along_k[k]);
  }
  for (auto& row : c_matrix) std::fill(std::begin(row), std::end(row), exact(c));
  uint32_t a_regs[kWarpSize][4] = {};
  uint32_t b_regs[kWarpSize][2] = {};
  float c_regs[kWarpSize][4];
  float d_regs[kWarpSize][4];
  distribute_k16_inputs(a, b, a_regs, b_regs);
  distribute_accumulators(c_matrix, c_regs);
  mma_m16n8k16(in, a_regs, b_regs, c_regs, d_regs);
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int index = 0; index < 4; ++index) {
      EXPECT_EQ(d_regs[lane][index], expected) << std::hexfloat << "lane " << lane << " d" << index;
    }
  }
}

// The emulation's documented numerics: exact products summed with c in double, rounded once to float.
TEST(PtxFragmentsMma, SumsExactlyAndRoundsOnce) {
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    // 2^24 + 16 * 0.5 = 2^24 + 8 exactly. Summed in float it would stay 2^24: each + 0.5 is a tie
    // that rounds back to the even 2^24.
    double ones[16];
    double halves[16];
    std::fill(std::begin(ones), std::end(ones), 1.0);
    std::fill(std::begin(halves), std::end(halves), 0.5);
    expect_uniform_product(in, ones, halves, std::ldexp(1.0, 24), 16777224.0f);
    // 1 + 2^-24 + 2^-48 is just above the midpoint of 1 and 1 + 2^-23, so it rounds up. Rounding the
    // products' sum to float first (2^-24 + 2^-48 is a tie there, giving 2^-24) and then adding it
    // to 1 (a tie again) would give 1.
    double small[16] = {std::ldexp(1.0, -12), std::ldexp(1.0, -24)};
    expect_uniform_product(in, small, small, 1.0, exact(1.0 + std::ldexp(1.0, -23)));
  }
}

// ---------------------------------------------------------------------------------------------
// ldmatrix

constexpr uint32_t kUntouched = 0xDEADBEEFu;

// "Shared memory": 32 rows with `stride_halves` 16-bit values between row starts, each matrix row
// placed at a random row and a random 16-byte column block, as a swizzled or padded tile would.
void check_ldmatrix(SeededRandom& random, int count, bool transpose, int stride_halves) {
  SCOPED_TRACE(::testing::Message() << "ldmatrix .x" << count << (transpose ? ".trans" : "") << ", row stride "
                                    << stride_halves * 2 << " bytes");
  constexpr int kSharedRows = 32;
  alignas(16) uint16_t shared[kSharedRows * 24];
  ASSERT_LE(stride_halves, 24);
  // Distinct values, so that reading the wrong element cannot go unnoticed.
  std::iota(std::begin(shared), std::end(shared), uint16_t(1));
  std::shuffle(std::begin(shared), std::end(shared), random.engine());

  std::vector<int> shared_row(kSharedRows);
  std::iota(shared_row.begin(), shared_row.end(), 0);
  std::shuffle(shared_row.begin(), shared_row.end(), random.engine());
  const int column_blocks = stride_halves / 8;

  const uint16_t* row_address[kWarpSize];
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (lane < 8 * count) {
      const int column = 8 * int(random.integer(0, column_blocks - 1));
      row_address[lane] = shared + shared_row[size_t(lane)] * stride_halves + column;
    } else {
      // Lanes past the last matrix do not give addresses: a misaligned one must not be read.
      row_address[lane] = shared + 1;
    }
  }
  uint32_t out[kWarpSize][4];
  for (auto& lane_registers : out) std::fill(std::begin(lane_registers), std::end(lane_registers), kUntouched);

  ldmatrix(count, transpose, row_address, out);

  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int matrix = 0; matrix < 4; ++matrix) {
      if (matrix >= count) {
        EXPECT_EQ(out[lane][matrix], kUntouched) << "lane " << lane << " register " << matrix;
        continue;
      }
      for (int half = 0; half < 2; ++half) {
        const Cell at = ldmatrix_cell(lane, half, transpose);
        const uint16_t expected = row_address[8 * matrix + at.row][at.col];
        EXPECT_EQ(half_of(out[lane][matrix], half), expected) << "lane " << lane << " register " << matrix << " half "
                                                              << half << " = matrix " << matrix << " element " << at;
      }
    }
  }
}

TEST(PtxFragmentsLdmatrix, EveryLaneMatchesTheTableForEachCountAndTranspose) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  for (int stride_bytes : {16, 48}) {
    for (int count : {1, 2, 4}) {
      for (bool transpose : {false, true}) check_ldmatrix(random, count, transpose, stride_bytes / 2);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ldmatrix feeding mma, as a kernel does: A from a padded row-major tile, B from a k-major tile.

constexpr uint16_t kF16QuietNaN = 0x7E00;

TEST(PtxFragmentsEndToEnd, LdmatrixX4AndX2TransFeedM16n8k16) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    uint16_t a[16][16];
    uint16_t b[16][8];
    float c[16][8];
    fill_random_inputs(random, in, a);
    fill_random_inputs(random, in, b);
    fill_random_accumulators(random, c);

    // A: 16 rows of 24 values (48 bytes, 8 of padding); B: [k][n] rows of 16 values (32 bytes).
    // The padding holds NaN, so a load from it would poison D.
    constexpr int kAStride = 24;
    constexpr int kBStride = 16;
    alignas(16) uint16_t a_shared[16 * kAStride];
    alignas(16) uint16_t b_shared[16 * kBStride];
    std::fill(std::begin(a_shared), std::end(a_shared), kF16QuietNaN);
    std::fill(std::begin(b_shared), std::end(b_shared), kF16QuietNaN);
    for (int m = 0; m < 16; ++m) {
      for (int k = 0; k < 16; ++k) a_shared[m * kAStride + k] = a[m][k];
    }
    for (int k = 0; k < 16; ++k) {
      for (int n = 0; n < 8; ++n) b_shared[k * kBStride + n] = b[k][n];
    }

    // A's registers a0a1 | a2a3 | a4a5 | a6a7 are the 8x8 blocks (rows 0-7, cols 0-7) | (8-15, 0-7) |
    // (0-7, 8-15) | (8-15, 8-15), so lane l gives row l % 16 at column 8 * (l / 16).
    const uint16_t* a_rows[kWarpSize];
    for (int lane = 0; lane < kWarpSize; ++lane) a_rows[lane] = a_shared + (lane % 16) * kAStride + 8 * (lane / 16);
    uint32_t a_regs[kWarpSize][4];
    ldmatrix(4, false, a_rows, a_regs);

    // B's registers b0b1 | b2b3 are k 0-7 | k 8-15 of column groupID: the transposes of the k-major
    // 8x8 blocks, so lanes 0-15 give the rows k = lane.
    const uint16_t* b_rows[kWarpSize] = {};
    for (int lane = 0; lane < 16; ++lane) b_rows[lane] = b_shared + lane * kBStride;
    uint32_t b_loaded[kWarpSize][4];
    ldmatrix(2, true, b_rows, b_loaded);
    uint32_t b_regs[kWarpSize][2];
    for (int lane = 0; lane < kWarpSize; ++lane) {
      b_regs[lane][0] = b_loaded[lane][0];
      b_regs[lane][1] = b_loaded[lane][1];
    }

    float c_regs[kWarpSize][4];
    float d_regs[kWarpSize][4];
    distribute_accumulators(c, c_regs);
    mma_m16n8k16(in, a_regs, b_regs, c_regs, d_regs);
    EXPECT_TRUE(accumulators_match(d_regs, reference_product(in, a, b, c)));
  }
}

TEST(PtxFragmentsEndToEnd, LdmatrixX2AndX1TransFeedM16n8k8) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  for (MmaInput in : kInputs) {
    SCOPED_TRACE(input_name(in));
    uint16_t a[16][8];
    uint16_t b[8][8];
    float c[16][8];
    fill_random_inputs(random, in, a);
    fill_random_inputs(random, in, b);
    fill_random_accumulators(random, c);

    constexpr int kStride = 16;  // 32-byte rows, half of each is padding
    alignas(16) uint16_t a_shared[16 * kStride];
    alignas(16) uint16_t b_shared[8 * kStride];
    std::fill(std::begin(a_shared), std::end(a_shared), kF16QuietNaN);
    std::fill(std::begin(b_shared), std::end(b_shared), kF16QuietNaN);
    for (int m = 0; m < 16; ++m) {
      for (int k = 0; k < 8; ++k) a_shared[m * kStride + k] = a[m][k];
    }
    for (int k = 0; k < 8; ++k) {
      for (int n = 0; n < 8; ++n) b_shared[k * kStride + n] = b[k][n];
    }

    const uint16_t* a_rows[kWarpSize] = {};
    for (int lane = 0; lane < 16; ++lane) a_rows[lane] = a_shared + lane * kStride;
    uint32_t a_loaded[kWarpSize][4];
    ldmatrix(2, false, a_rows, a_loaded);
    const uint16_t* b_rows[kWarpSize] = {};
    for (int lane = 0; lane < 8; ++lane) b_rows[lane] = b_shared + lane * kStride;
    uint32_t b_loaded[kWarpSize][4];
    ldmatrix(1, true, b_rows, b_loaded);

    uint32_t a_regs[kWarpSize][2];
    uint32_t b_regs[kWarpSize][1];
    for (int lane = 0; lane < kWarpSize; ++lane) {
      a_regs[lane][0] = a_loaded[lane][0];
      a_regs[lane][1] = a_loaded[lane][1];
      b_regs[lane][0] = b_loaded[lane][0];
    }
    float c_regs[kWarpSize][4];
    float d_regs[kWarpSize][4];
    distribute_accumulators(c, c_regs);
    mma_m16n8k8(in, a_regs, b_regs, c_regs, d_regs);
    EXPECT_TRUE(accumulators_match(d_regs, reference_product(in, a, b, c)));
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions

bool is_f16_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x007Fu) != 0; }

TEST(PtxFragmentsConversion, F16RoundsToNearestTiesToEven) {
  EXPECT_EQ(float_to_f16_rn(1.0f), 0x3C00);
  // The f16 spacing above 1 is 2^-10: 1 + 2^-11 is halfway between 0x3C00 (even) and 0x3C01.
  EXPECT_EQ(float_to_f16_rn(exact(1.0 + std::ldexp(1.0, -11))), 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 0x3C01 and 0x3C02 (even).
  EXPECT_EQ(float_to_f16_rn(exact(1.0 + 3 * std::ldexp(1.0, -11))), 0x3C02);
  // Just off the halfway points, plain nearest.
  EXPECT_EQ(float_to_f16_rn(exact(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -20))), 0x3C01);
  EXPECT_EQ(float_to_f16_rn(exact(1.0 + 3 * std::ldexp(1.0, -11) - std::ldexp(1.0, -20))), 0x3C01);
  EXPECT_EQ(float_to_f16_rn(-1.5f), 0xBE00);
  // A tie that carries into the next binade: 2 - 2^-11 lies between 0x3BFF (odd) and 2.0 = 0x4000.
  EXPECT_EQ(float_to_f16_rn(exact(2.0 - std::ldexp(1.0, -11))), 0x4000);
  EXPECT_EQ(float_to_f16_rn(0.1f), 0x2E66);
}

TEST(PtxFragmentsConversion, F16MaxFiniteAndOverflowToInfinity) {
  EXPECT_EQ(float_to_f16_rn(65504.0f), 0x7BFF);
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);
  // The next value would be 65536; 65520 is halfway and ties to the even encoding, which is infinity.
  EXPECT_EQ(float_to_f16_rn(65519.99f), 0x7BFF);
  EXPECT_EQ(float_to_f16_rn(65520.0f), 0x7C00);
  EXPECT_EQ(float_to_f16_rn(-65520.0f), 0xFC00);
  EXPECT_EQ(float_to_f16_rn(1.0e6f), 0x7C00);
  EXPECT_EQ(float_to_f16_rn(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(float_to_f16_rn(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_f16_rn(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(f16_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_float(0xFC00), -std::numeric_limits<float>::infinity());
}

TEST(PtxFragmentsConversion, F16SubnormalsAreKept) {
  const double smallest = std::ldexp(1.0, -24);
  EXPECT_EQ(float_to_f16_rn(exact(smallest)), 0x0001);
  EXPECT_EQ(f16_to_float(0x0001), exact(smallest));
  EXPECT_EQ(f16_to_float(0x8001), -exact(smallest));
  // Halfway below the smallest subnormal ties to zero (even); anything above rounds up to it.
  EXPECT_EQ(float_to_f16_rn(exact(smallest / 2)), 0x0000);
  EXPECT_EQ(float_to_f16_rn(exact(-smallest / 2)), 0x8000);
  EXPECT_EQ(float_to_f16_rn(std::nextafter(exact(smallest / 2), 1.0f)), 0x0001);
  // 3 * 2^-25 is halfway between 0x0001 and 0x0002 (even).
  EXPECT_EQ(float_to_f16_rn(exact(3 * smallest / 2)), 0x0002);
  EXPECT_EQ(float_to_f16_rn(exact(1023 * smallest)), 0x03FF);  // largest subnormal
  EXPECT_EQ(f16_to_float(0x03FF), exact(1023 * smallest));
  EXPECT_EQ(float_to_f16_rn(exact(std::ldexp(1.0, -14))), 0x0400);  // smallest normal
  // Halfway between the largest subnormal (odd) and the smallest normal rounds up into the normals.
  EXPECT_EQ(float_to_f16_rn(exact(1023.5 * smallest)), 0x0400);
  EXPECT_EQ(float_to_f16_rn(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(PtxFragmentsConversion, F16NaNAndSignedZero) {
  EXPECT_TRUE(is_f16_nan(float_to_f16_rn(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_f16_nan(float_to_f16_rn(-std::numeric_limits<float>::quiet_NaN())));
  // A float NaN whose payload lives only in the low bits must not become infinity.
  EXPECT_TRUE(is_f16_nan(float_to_f16_rn(std::bit_cast<float>(0x7F800001u))));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7C01)));
  EXPECT_TRUE(std::isnan(f16_to_float(0xFFFF)));
  EXPECT_EQ(float_to_f16_rn(0.0f), 0x0000);
  EXPECT_EQ(float_to_f16_rn(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(f16_to_float(0x8000)));
  EXPECT_EQ(f16_to_float(0x8000), 0.0f);
  EXPECT_EQ(float_to_f16_rn(-1e-30f), 0x8000);  // underflow keeps the sign
}

TEST(PtxFragmentsConversion, F16EveryBitPatternRoundTrips) {
  int failures = 0;
  float previous_positive = -1.0f;
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const uint16_t h = uint16_t(bits);
    const float widened = f16_to_float(h);
    const uint16_t back = float_to_f16_rn(widened);
    const bool ok = is_f16_nan(h) ? (std::isnan(widened) && is_f16_nan(back)) : back == h;
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << std::hex << "f16 0x" << h << " -> " << widened << " -> 0x" << back;
    }
    // The positive finite encodings are ordered like their values, each strictly above the last.
    if (h <= 0x7BFF) {
      if (!(widened > previous_positive) && ++failures <= 10)
        ADD_FAILURE() << std::hex << "f16 0x" << h << " not increasing";
      previous_positive = widened;
    }
  }
  EXPECT_EQ(failures, 0);
}

// Every finite non-negative f16 value, in order, followed by 2^16 standing for infinity: the value
// the next encoding would have if the exponent did not run out.
std::vector<double> f16_ladder() {
  std::vector<double> ladder;
  for (uint16_t h = 0; h <= 0x7BFF; ++h) ladder.push_back(f16_to_float(h));
  ladder.push_back(65536.0);
  return ladder;
}

// The nearest rung of the ladder, ties to the even index (index == encoding for f16).
uint16_t nearest_on_ladder(const std::vector<double>& ladder, float value) {
  const double magnitude = std::fabs(double(value));
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  if (magnitude >= ladder.back()) return sign | uint16_t(ladder.size() - 1);
  const size_t above = size_t(std::upper_bound(ladder.begin(), ladder.end(), magnitude) - ladder.begin());
  const size_t below = above - 1;
  const double to_below = magnitude - ladder[below];
  const double to_above = ladder[above] - magnitude;
  size_t chosen = to_below < to_above ? below : above;
  if (to_below == to_above) chosen = below % 2 == 0 ? below : above;
  return uint16_t(sign | chosen);
}

// Against a search for the nearest representable value: random floats across the f16 range and
// beyond, plus every kind of exact halfway point.
TEST(PtxFragmentsConversion, F16MatchesNearestValueSearch) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  const std::vector<double> ladder = f16_ladder();
  int failures = 0;
  auto check = [&](float value) {
    const uint16_t expected = nearest_on_ladder(ladder, value);
    const uint16_t got = float_to_f16_rn(value);
    if (got != expected && ++failures <= 10) {
      ADD_FAILURE() << std::hexfloat << value << std::hex << ": got 0x" << got << ", expected 0x" << expected;
    }
  };
  for (int i = 0; i < 200000; ++i) {
    // Random sign and mantissa, exponent from far below the subnormals to past the overflow.
    const uint32_t sign = uint32_t(random.integer(0, 1)) << 31;
    const uint32_t exponent_field = uint32_t(127 + random.integer(-30, 17)) << 23;
    const uint32_t mantissa = uint32_t(random.integer(0, (1 << 23) - 1));
    check(std::bit_cast<float>(sign | exponent_field | mantissa));
    // The exact midpoint of two neighbouring f16 values (exact in float: 12 significant bits).
    const size_t rung = size_t(random.integer(0, int64_t(ladder.size()) - 2));
    const float midpoint = exact((ladder[rung] + ladder[rung + 1]) / 2);
    check(sign ? -midpoint : midpoint);
  }
  EXPECT_EQ(failures, 0);
}

TEST(PtxFragmentsConversion, Bf16RoundsToNearestTiesToEven) {
  EXPECT_EQ(float_to_bf16_rn(1.0f), 0x3F80);
  // The bf16 spacing above 1 is 2^-7: 1 + 2^-8 is halfway between 0x3F80 (even) and 0x3F81.
  EXPECT_EQ(float_to_bf16_rn(exact(1.0 + std::ldexp(1.0, -8))), 0x3F80);
  EXPECT_EQ(float_to_bf16_rn(exact(1.0 + 3 * std::ldexp(1.0, -8))), 0x3F82);
  EXPECT_EQ(float_to_bf16_rn(exact(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -20))), 0x3F81);
  EXPECT_EQ(float_to_bf16_rn(exact(-(2.0 - std::ldexp(1.0, -8)))), 0xC000);
  EXPECT_EQ(float_to_bf16_rn(0.1f), 0x3DCD);
  EXPECT_EQ(bf16_to_float(0x3DCD), std::bit_cast<float>(0x3DCD0000u));
}

TEST(PtxFragmentsConversion, Bf16MaxFiniteAndOverflowToInfinity) {
  const float max_finite = std::bit_cast<float>(0x7F7F0000u);  // (2 - 2^-7) * 2^127
  EXPECT_EQ(float_to_bf16_rn(max_finite), 0x7F7F);
  EXPECT_EQ(bf16_to_float(0x7F7F), max_finite);
  // (2 - 2^-8) * 2^127 is halfway to 2^128 and ties to the even encoding: infinity.
  EXPECT_EQ(float_to_bf16_rn(std::bit_cast<float>(0x7F7F7FFFu)), 0x7F7F);
  EXPECT_EQ(float_to_bf16_rn(std::bit_cast<float>(0x7F7F8000u)), 0x7F80);
  EXPECT_EQ(float_to_bf16_rn(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(float_to_bf16_rn(-std::numeric_limits<float>::max()), 0xFF80);
  EXPECT_EQ(float_to_bf16_rn(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(bf16_to_float(0xFF80), -std::numeric_limits<float>::infinity());
}

TEST(PtxFragmentsConversion, Bf16SubnormalsAreKept) {
  const double smallest = std::ldexp(1.0, -133);
  EXPECT_EQ(float_to_bf16_rn(exact(smallest)), 0x0001);
  EXPECT_EQ(bf16_to_float(0x0001), exact(smallest));
  EXPECT_EQ(float_to_bf16_rn(exact(smallest / 2)), 0x0000);
  EXPECT_EQ(float_to_bf16_rn(exact(-smallest / 2)), 0x8000);
  EXPECT_EQ(float_to_bf16_rn(exact(3 * smallest / 2)), 0x0002);
  EXPECT_EQ(float_to_bf16_rn(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_bf16_rn(exact(127 * smallest)), 0x007F);
  EXPECT_EQ(float_to_bf16_rn(exact(127.5 * smallest)), 0x0080);  // rounds up into the normals
}

TEST(PtxFragmentsConversion, Bf16NaNAndSignedZero) {
  EXPECT_TRUE(is_bf16_nan(float_to_bf16_rn(std::numeric_limits<float>::quiet_NaN())));
  // Payload only in the low 16 bits: plain truncation would make this infinity.
  EXPECT_TRUE(is_bf16_nan(float_to_bf16_rn(std::bit_cast<float>(0xFF800001u))));
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC0)));
  EXPECT_TRUE(std::isnan(bf16_to_float(0xFF81)));
  EXPECT_EQ(float_to_bf16_rn(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(bf16_to_float(0x8000)));
}

TEST(PtxFragmentsConversion, Bf16EveryBitPatternRoundTrips) {
  int failures = 0;
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const uint16_t h = uint16_t(bits);
    const float widened = bf16_to_float(h);
    const uint16_t back = float_to_bf16_rn(widened);
    const bool ok = is_bf16_nan(h) ? (std::isnan(widened) && is_bf16_nan(back)) : back == h;
    if (!ok && ++failures <= 10) ADD_FAILURE() << std::hex << "bf16 0x" << h << " -> " << widened << " -> 0x" << back;
  }
  EXPECT_EQ(failures, 0);
}

// bf16 values are floats with the low 16 bits zero, so the two candidates for a float are its
// truncation and the next encoding up; the nearer wins, a tie goes to the even one.
TEST(PtxFragmentsConversion, Bf16MatchesNearerOfTheTwoNeighbours) {
  SeededRandom random;
  PTX_TRACE_SEED(random);
  auto magnitude_of = [](uint32_t magnitude_bits16) {
    // 0x7F80 stands for 2^128, the value past the largest finite one.
    return magnitude_bits16 == 0x7F80 ? std::ldexp(1.0, 128) : double(std::bit_cast<float>(magnitude_bits16 << 16));
  };
  int failures = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = uint32_t(random.integer(0, 0xFFFFFFFF));
    if (i % 2 == 1) bits = (bits & 0xFFFF0000u) | 0x8000u;  // an exact halfway point
    const float value = std::bit_cast<float>(bits);
    if (!std::isfinite(value)) continue;
    const uint32_t below = (bits >> 16) & 0x7FFFu;
    const uint32_t above = below + 1;
    const double magnitude = std::fabs(double(value));
    const double to_below = magnitude - magnitude_of(below);
    const double to_above = magnitude_of(above) - magnitude;
    uint32_t chosen = to_below < to_above ? below : above;
    if (to_below == to_above) chosen = below % 2 == 0 ? below : above;
    const uint16_t expected = uint16_t((bits >> 16 & 0x8000u) | chosen);
    const uint16_t got = float_to_bf16_rn(value);
    if (got != expected && ++failures <= 10) {
      ADD_FAILURE() << std::hex << "float bits 0x" << bits << ": got 0x" << got << ", expected 0x" << expected;
    }
  }
  EXPECT_EQ(failures, 0);
}

// ---------------------------------------------------------------------------------------------
// Bad arguments

std::string message_of_invalid_argument(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument";
  return {};
}

TEST(PtxFragmentsArguments, LdmatrixRejectsCountsOtherThanOneTwoFour) {
  alignas(16) uint16_t shared[64] = {};
  const uint16_t* rows[kWarpSize];
  for (int lane = 0; lane < kWarpSize; ++lane) rows[lane] = shared + 8 * (lane % 8);
  uint32_t out[kWarpSize][4] = {};
  for (int count : {0, 3, 5, 8, -1}) {
    SCOPED_TRACE(count);
    const std::string message = message_of_invalid_argument([&] { ldmatrix(count, false, rows, out); });
    EXPECT_NE(message.find("ldmatrix"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(count)), std::string::npos) << message;
  }
}

std::string address_text(const void* address) {
  std::ostringstream text;
  text << address;
  return text.str();
}

TEST(PtxFragmentsArguments, LdmatrixRejectsMisalignedRowAddressNamingLaneAndAddress) {
  alignas(16) uint16_t shared[32 * 8] = {};
  for (int count : {1, 2, 4}) {
    for (bool transpose : {false, true}) {
      for (int offset_halves : {1, 4}) {  // 2 and 8 bytes off a 16-byte boundary
        SCOPED_TRACE(::testing::Message()
                     << ".x" << count << (transpose ? ".trans" : "") << " offset " << offset_halves * 2 << " bytes");
        const uint16_t* rows[kWarpSize];
        for (int lane = 0; lane < kWarpSize; ++lane) rows[lane] = shared + 8 * lane;
        const int bad_lane = 8 * count - 3;
        rows[bad_lane] += offset_halves;
        uint32_t out[kWarpSize][4];
        for (auto& lane_registers : out) std::fill(std::begin(lane_registers), std::end(lane_registers), kUntouched);

        const std::string message = message_of_invalid_argument([&] { ldmatrix(count, transpose, rows, out); });
        EXPECT_NE(message.find("ldmatrix"), std::string::npos) << message;
        EXPECT_NE(message.find("lane " + std::to_string(bad_lane)), std::string::npos) << message;
        EXPECT_NE(message.find(address_text(rows[bad_lane])), std::string::npos) << message;
        // Nothing is written when the instruction is refused.
        for (const auto& lane_registers : out) {
          for (uint32_t reg : lane_registers) EXPECT_EQ(reg, kUntouched);
        }
      }
    }
  }
}

TEST(PtxFragmentsArguments, LdmatrixRejectsNullRowAddress) {
  alignas(16) uint16_t shared[32 * 8] = {};
  const uint16_t* rows[kWarpSize];
  for (int lane = 0; lane < kWarpSize; ++lane) rows[lane] = shared + 8 * lane;
  rows[6] = nullptr;
  uint32_t out[kWarpSize][4] = {};
  const std::string message = message_of_invalid_argument([&] { ldmatrix(4, false, rows, out); });
  EXPECT_NE(message.find("lane 6"), std::string::npos) << message;
}

TEST(PtxFragmentsArguments, MmaRejectsUnknownInputType) {
  const uint32_t a16[kWarpSize][4] = {};
  const uint32_t b16[kWarpSize][2] = {};
  const uint32_t a8[kWarpSize][2] = {};
  const uint32_t b8[kWarpSize][1] = {};
  const float c[kWarpSize][4] = {};
  float d[kWarpSize][4];
  const auto unknown = static_cast<MmaInput>(7);
  EXPECT_THROW(mma_m16n8k16(unknown, a16, b16, c, d), std::invalid_argument);
  EXPECT_THROW(mma_m16n8k8(unknown, a8, b8, c, d), std::invalid_argument);
}

}  // namespace
}  // namespace sg_emu::ptx
