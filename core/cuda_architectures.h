#pragma once
// The GPU code a CUDA build holds, and whether a card can run it. Pure logic (no CUDA), so that
// every build and the CPU tests can use it; the list comes from CMake's CMAKE_CUDA_ARCHITECTURES
// through the SLIDEGRADE_CUDA_ARCHITECTURES definition (docs/gpu_architectures.md).
#include <string>
#include <string_view>
#include <vector>

namespace sg {

// Architectures as major * 10 + minor (sm_86 -> 86).
struct CudaArchitectures {
  std::vector<int> machine_code;  // SASS: runs on cards of the same major version, same or newer minor
  std::vector<int> ptx;           // PTX: the driver JIT-compiles it for any card of that architecture or newer
  bool empty() const { return machine_code.empty() && ptx.empty(); }
};

// Parses a CMAKE_CUDA_ARCHITECTURES list: "75-real;90;120-real" (N: both, N-real: SASS, N-virtual:
// PTX). Throws sg::Error naming the entry it cannot read.
CudaArchitectures parse_cuda_architectures(std::string_view cmake_list);

// What this binary holds: empty in CPU-only builds and on the emulated device (whose kernels are
// host code compiled once per emulated card).
const CudaArchitectures& compiled_cuda_architectures();

// The architecture whose code a card of compute capability `sm` runs: the newest machine code of the
// card's major version not newer than the card, else the newest PTX not newer than the card (the
// CUDA driver's own choice); 0 when the binary holds nothing the card can run.
int loaded_cuda_architecture(const CudaArchitectures& held, int sm);

// "sm_75 sm_80 sm_86 sm_89 sm_90 sm_120, PTX compute_90 (JIT for newer cards)".
std::string describe_cuda_architectures(const CudaArchitectures& held);

// "" when a card of compute capability `sm` can run the code held; else a message naming the card,
// what it needs, what the binary holds and how to build for it.
std::string missing_cuda_code_reason(const CudaArchitectures& held, int sm, const std::string& card);

}  // namespace sg
