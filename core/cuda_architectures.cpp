#include "core/cuda_architectures.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"

namespace sg {

CudaArchitectures parse_cuda_architectures(std::string_view cmake_list) {
  CudaArchitectures held;
  while (!cmake_list.empty()) {
    const size_t end = std::min(cmake_list.find_first_of("; "), cmake_list.size());
    std::string_view entry = cmake_list.substr(0, end);
    cmake_list.remove_prefix(std::min(end + 1, cmake_list.size()));
    if (entry.empty()) continue;
    bool sass = true, ptx = true;
    if (entry.ends_with("-real")) {
      ptx = false;
      entry.remove_suffix(5);
    } else if (entry.ends_with("-virtual")) {
      sass = false;
      entry.remove_suffix(8);
    }
    int arch = 0;
    const auto [rest, status] = std::from_chars(entry.data(), entry.data() + entry.size(), arch);
    // "90a" (architecture-specific features) runs only on that very architecture: held as its SASS.
    const bool specific = rest != entry.data() + entry.size() && std::string_view(rest, 1) == "a" &&
                          rest + 1 == entry.data() + entry.size();
    SG_CHECK(status == std::errc() && arch >= 10 && (rest == entry.data() + entry.size() || specific),
             "CUDA architecture list: cannot read '", entry, "' (expected e.g. 75, 86-real or 90-virtual)");
    if (sass) held.machine_code.push_back(arch);
    if (ptx && !specific) held.ptx.push_back(arch);
  }
  for (auto* list : {&held.machine_code, &held.ptx}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
  }
  return held;
}

const CudaArchitectures& compiled_cuda_architectures() {
#ifdef SLIDEGRADE_CUDA_ARCHITECTURES
  static const CudaArchitectures held = parse_cuda_architectures(SLIDEGRADE_CUDA_ARCHITECTURES);
#else
  static const CudaArchitectures held;
#endif
  return held;
}

int loaded_cuda_architecture(const CudaArchitectures& held, int sm) {
  int best = 0;
  for (int arch : held.machine_code)
    if (arch / 10 == sm / 10 && arch <= sm) best = std::max(best, arch);
  if (best) return best;
  for (int arch : held.ptx)
    if (arch <= sm) best = std::max(best, arch);
  return best;
}

std::string describe_cuda_architectures(const CudaArchitectures& held) {
  if (held.empty()) return "none";
  std::string text;
  for (int arch : held.machine_code) text += detail::concat(text.empty() ? "" : " ", "sm_", arch);
  if (!held.ptx.empty()) {
    text += text.empty() ? "PTX" : ", PTX";
    for (int arch : held.ptx) text += detail::concat(" compute_", arch);
    text += " (JIT-compiled for newer cards)";
  }
  return text;
}

std::string missing_cuda_code_reason(const CudaArchitectures& held, int sm, const std::string& card) {
  if (held.empty() || loaded_cuda_architecture(held, sm) != 0) return "";
  return detail::concat(card, " needs code for sm_", sm, ", but this slidegrade binary holds ",
                        describe_cuda_architectures(held), "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=", sm,
                        sm < 75 ? " using CUDA 12 (bash scripts/build_pascal.sh builds for a Pascal card)" : "",
                        ", or run with --device cpu");
}

}  // namespace sg
