#pragma once
// Which CUDA kernels a card gets: the architecture thresholds the dispatchers use
// (kernels/cuda/conv2d_implicit_gemm.cu, kernels/cuda/linear.cu), in one place, and the description
// `slidegrade info` and `slidegrade plan --sm` print. Compiled in every build (no CUDA).
#include <cstddef>
#include <string>

#include "core/dtype.h"

namespace sg {

// Tensor-core convolution (ldmatrix + mma.sync m16n8k8 f16) from sm_75 code; m16n8k16 with
// cp.async, and bf16, from sm_80 code. Compared with the architecture of the code the card loaded
// (core/cuda_architectures.h), not with the card: a card running older PTX runs what that PTX holds.
constexpr int kTensorCoreF16MinArch = 75;
constexpr int kTensorCoreBf16MinArch = 80;
constexpr int kAsyncCopyMinArch = 80;
// cuBLAS has bf16 GEMMs from Volta (sm_70) on; below, they run in f32 (operands widened, rounded once).
constexpr int kCublasBf16MinArch = 70;

// The workspace our cuBLAS handle takes from the caching allocator at its first GEMM and keeps for
// as long as the process runs (kernels/cuda/linear.cu; the memory plan counts it): 4 MiB, cuBLAS's
// own default pool size, and 32 MiB from Hopper (sm_90) on, as cuBLAS's documentation asks.
size_t cublas_workspace_bytes(int sm);

// Whether the convolution of `dtype` runs on tensor cores in code compiled for `loaded_arch`.
bool conv_uses_tensor_cores(DType dtype, int loaded_arch);

// The kernels a card of compute capability `sm` that runs code compiled for `loaded_arch` gets, one
// line per kind of work, for `precision` (f32, f16 or bf16 activations).
std::string describe_cuda_kernel_paths(int sm, int loaded_arch, DType precision);

}  // namespace sg
