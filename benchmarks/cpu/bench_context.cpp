// Adds the CPU GEMM library (and any hint about it) to the benchmark header, so a figure is
// never read without knowing which OpenBLAS kernels produced it.
#include <benchmark/benchmark.h>

#include "kernels/cpu/blas_info.h"

namespace {
const bool kContextAdded = [] {
  benchmark::AddCustomContext("cpu_gemm", sg::cpu::gemm_library_description());
  const std::string hint = sg::cpu::gemm_library_hint();
  if (!hint.empty()) benchmark::AddCustomContext("cpu_gemm_hint", hint);
  return true;
}();
}  // namespace
