#pragma once
// Which vector instruction set the fast CPU loops run with. The build targets x86-64-v2 (SSE4.2:
// 4 floats per instruction) so that the binary runs anywhere; the hot memory-bound loops (batch
// norm + activation, depthwise convolution) are compiled a second and third time for AVX2 + FMA
// and AVX-512 and picked at run time from cpuid. BN + Swish was 31% of a B0 forward with the
// 4-wide libmvec expf.
//
// How a kernel file gets its variants: its loops live in a `.inc` file that is included once per
// ISA, each time inside its own namespace and under `#pragma GCC target` (SG_CPU_ISA_BEGIN /
// SG_CPU_ISA_END below). Functions that the pragma covers, the OpenMP bodies outlined from them
// included, are compiled for that ISA; inline helpers defined before it (kernels/scalar_math.h)
// are inlined into them, and `#pragma omp simd` calls to expf etc. bind to libmvec's 16-wide
// AVX-512 or 8-wide AVX2 versions. Nothing outside those namespaces is compiled for a newer ISA,
// so no inline function shared with the rest of the program can pick up AVX-512 code.
//
// Every variant computes the same formulas; results may differ in the last bits (FMA
// contraction, other libmvec versions), as between the CPU and CUDA. The tests run each
// variant the CPU has against the references (cpu::set_isa_for_testing).
#include <cstdint>

namespace sg::cpu {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);

// The best ISA this CPU has, chosen once; SG_CPU_ISA=baseline|avx2|avx512 in the environment caps
// it (a value above what the CPU has is ignored).
Isa isa();

// Whether this CPU can run `isa`'s variants.
bool isa_supported(Isa isa);

// Tests only: run every later kernel with `isa` (must be supported); returns the previous one.
Isa set_isa_for_testing(Isa isa);

}  // namespace sg::cpu

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SG_CPU_ISA_VARIANTS 1
#define SG_CPU_ISA_PRAGMA(x) _Pragma(#x)
// AVX2 + FMA (x86-64-v3's vector part) / AVX-512 F, VL, BW, DQ (x86-64-v4's) with 512-bit vectors.
#define SG_CPU_ISA_TARGET_avx2 "avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe"
#define SG_CPU_ISA_TARGET_avx512 \
  "avx512f,avx512vl,avx512bw,avx512dq,avx512cd,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe,prefer-vector-width=512"
#else
#define SG_CPU_ISA_VARIANTS 0
#endif

// Opens / closes a region compiled for `name` (avx2 or avx512); see the top of this file.
#if SG_CPU_ISA_VARIANTS
#define SG_CPU_ISA_STR_(x) #x
#define SG_CPU_ISA_STR(x) SG_CPU_ISA_STR_(x)
#define SG_CPU_ISA_BEGIN(name) \
  _Pragma("GCC push_options") _Pragma(SG_CPU_ISA_STR(GCC target(SG_CPU_ISA_TARGET_##name)))
#define SG_CPU_ISA_END _Pragma("GCC pop_options")
#endif

// Calls isa_<variant>::fn(args...) for the current ISA, where each isa_<variant> namespace holds
// one inclusion of the kernel's `.inc` file.
#if SG_CPU_ISA_VARIANTS
#define SG_CPU_ISA_DISPATCH(fn, ...)                                         \
  do {                                                                       \
    switch (::sg::cpu::isa()) {                                              \
      case ::sg::cpu::Isa::avx512: return isa_avx512::fn(__VA_ARGS__);       \
      case ::sg::cpu::Isa::avx2: return isa_avx2::fn(__VA_ARGS__);           \
      case ::sg::cpu::Isa::baseline: break;                                  \
    }                                                                        \
    return isa_baseline::fn(__VA_ARGS__);                                    \
  } while (false)
#else
#define SG_CPU_ISA_DISPATCH(fn, ...) return isa_baseline::fn(__VA_ARGS__)
#endif
