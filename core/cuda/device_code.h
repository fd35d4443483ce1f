#pragma once
// Whether the GPU code this binary holds runs on a device, and which (core/cuda_architectures.h).
// Implemented by the CUDA runtime layer (runtime.cpp; runtime_off.cpp in CPU-only builds). Apart
// from core/cuda/runtime.h so that the many files including that one do not depend on this.
#include <string>

namespace sg::cuda {

int compute_capability(int index);  // major * 10 + minor: 61 for a GTX 1050 Ti
// "" when the binary holds code the device can run; else a message that names the card, the code
// it needs, what the binary holds and the build to make.
std::string missing_code_reason(int index);
// The architecture of the code the device runs (its own machine code, or the PTX it JIT-compiles);
// its compute capability on the emulated device. 0 when the binary holds nothing it can run.
int code_architecture(int index);

}  // namespace sg::cuda
