#include "kernels/cpu/blas_info.h"

#include <cblas.h>

#include <string_view>

namespace sg::cpu {

std::string gemm_library_description() {
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  const int threads = openblas_get_num_threads();
  const char* parallel = openblas_get_parallel() == 2 ? "OpenMP" : openblas_get_parallel() == 1 ? "pthreads" : "serial";
  return std::string(config ? config : "OpenBLAS") + "; " + (core ? core : "?") + " kernels, " +
         std::to_string(threads) + " threads (" + parallel + ")";
}

std::string gemm_library_hint() {
#if defined(__x86_64__)
  const char* core = openblas_get_corename();
  const bool generic = core && (std::string_view(core) == "Prescott" || std::string_view(core) == "prescott");
  if (generic && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "OpenBLAS did not recognise this CPU and uses its generic SSE3 kernels; set OPENBLAS_CORETYPE=SkylakeX "
           "(AVX-512 kernels, correct on this CPU) for GEMMs several times faster (scripts/cpu_env.sh does)";
  if (generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "OpenBLAS did not recognise this CPU and uses its generic SSE3 kernels; set OPENBLAS_CORETYPE=Haswell "
           "(AVX2+FMA kernels, correct on this CPU) for GEMMs several times faster";
#endif
  return "";
}

}  // namespace sg::cpu
