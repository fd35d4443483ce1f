#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace sg::cpu {
namespace {

Isa best_supported() {
#if SG_CPU_ISA_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return Isa::avx2;
#endif
  return Isa::baseline;
}

Isa from_environment() {
  const Isa best = best_supported();
  const char* wanted = std::getenv("SG_CPU_ISA");
  if (!wanted || !*wanted) return best;
  for (Isa cap : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (std::strcmp(wanted, isa_name(cap)) == 0) return int(cap) < int(best) ? cap : best;
  throw Error(std::string("SG_CPU_ISA is '") + wanted + "', expected baseline, avx2 or avx512");
}

std::atomic<int>& current() {
  static std::atomic<int> value{int(from_environment())};
  return value;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa isa() { return Isa(current().load(std::memory_order_relaxed)); }

bool isa_supported(Isa wanted) { return int(wanted) <= int(best_supported()); }

Isa set_isa_for_testing(Isa wanted) {
  SG_CHECK(isa_supported(wanted), "set_isa_for_testing: this CPU cannot run ", isa_name(wanted), " (best is ",
           isa_name(best_supported()), ")");
  return Isa(current().exchange(int(wanted)));
}

}  // namespace sg::cpu
