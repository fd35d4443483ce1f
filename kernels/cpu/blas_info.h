#pragma once
// What the CPU GEMM (OpenBLAS) runs with, for `slidegrade info` and the benchmark headers.
#include <string>

namespace sg::cpu {

// e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell kernels, 2 threads (OpenMP)".
std::string gemm_library_description();

// Non-empty when OpenBLAS did not recognise this CPU and fell back to its generic SSE3
// ("Prescott") kernels although the CPU has AVX2 and FMA: GEMMs then run several times
// slower. The text says how to choose the right kernels (OPENBLAS_CORETYPE=Haswell).
std::string gemm_library_hint();

}  // namespace sg::cpu
