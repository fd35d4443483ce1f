// Empty on purpose. clang's CUDA runtime wrapper (__clang_cuda_runtime_wrapper.h) includes this
// cuRAND header in every .cu file, only so that its host-side redeclarations of blockDim and
// threadIdx are made once, harmlessly, before any user code could include it. The CUDA 12.9 toolkit
// that scripts/build_pascal.sh puts together from PyPI wheels has no cuRAND, and slidegrade uses
// none, so there is nothing to redeclare.
#pragma once
