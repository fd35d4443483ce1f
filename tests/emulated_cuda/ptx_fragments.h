#pragma once
// What the warp-collective inline-PTX instructions of our kernels do, as pure functions over the
// registers of one whole warp, so the emulated CUDA device can run .cu kernels on the host.
//
// Every array's first index is the lane (0..31). The fragment layouts (which lane holds which
// matrix element in which register) follow the PTX ISA's tables "Matrix Fragments for
// mma.m16n8k16 with floating point type", "Matrix Fragments for mma.m16n8k8" and the ldmatrix
// section. Within a 32-bit register, the element with the lower index sits in the low 16 bits,
// as it does when two consecutive 16-bit values are loaded as one 32-bit word.
//
// Numerics: each output element is c plus the sum of the exact products, summed in double and
// rounded once to float. A tensor core's internal accumulation order and intermediate rounding
// are not modelled, so results can differ from real hardware in the last bits of the float.
#include <cstdint>

namespace sg_emu::ptx {

constexpr int kWarpSize = 32;

enum class MmaInput { f16, bf16 };

// mma.sync.aligned.m16n8k16.row.col.f32.<in>.<in>.f32  d = a * b + c
// a: 4 registers per lane (8 x 16-bit values, packed low half first), b: 2, c and d: 4 floats.
// c and d may be the same array (the usual in-place accumulation): all inputs are read first.
void mma_m16n8k16(MmaInput in, const uint32_t (&a)[kWarpSize][4], const uint32_t (&b)[kWarpSize][2],
                  const float (&c)[kWarpSize][4], float (&d)[kWarpSize][4]);

// mma.sync.aligned.m16n8k8.row.col.f32.<in>.<in>.f32 (the f16 form is the one sm_75 has; bf16 is
// accepted too and uses the same layout). c and d may be the same array.
void mma_m16n8k8(MmaInput in, const uint32_t (&a)[kWarpSize][2], const uint32_t (&b)[kWarpSize][1],
                 const float (&c)[kWarpSize][4], float (&d)[kWarpSize][4]);

// ldmatrix.sync.aligned.m8n8.x<count>[.trans].shared.b16, count 1, 2 or 4: lanes 8*j .. 8*j+7 give the
// addresses of rows 0..7 of matrix j (each row 8 consecutive 16-bit values, 16 bytes); lane l receives
// register j of its fragment of matrix j in out[l][j] (registers >= count are left untouched).
// row_address[l] is only read for l < 8 * count.
// Throws std::invalid_argument when count is not 1, 2 or 4, or when a row address that is read is
// null or not 16-byte aligned; out is left unchanged then.
void ldmatrix(int count, bool transpose, const uint16_t* const (&row_address)[kWarpSize],
              uint32_t (&out)[kWarpSize][4]);

// Conversions as the hardware does them: round to nearest even; NaN stays NaN; overflow to infinity
// for f16 (cvt.rn.f16.f32) and bf16 (cvt.rn.bf16.f32); subnormals kept.
// A NaN input becomes the quiet NaN 0x7FFF (its payload and sign are not carried over).
uint16_t float_to_f16_rn(float f);
float f16_to_float(uint16_t h);
uint16_t float_to_bf16_rn(float f);
float bf16_to_float(uint16_t h);

}  // namespace sg_emu::ptx
