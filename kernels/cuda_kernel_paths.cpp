#include "kernels/cuda_kernel_paths.h"

#include "core/error.h"

namespace sg {

size_t cublas_workspace_bytes(int sm) { return sm >= 90 ? (size_t(32) << 20) : (size_t(4) << 20); }

bool conv_uses_tensor_cores(DType dtype, int loaded_arch) {
  if (dtype == DType::f16) return loaded_arch >= kTensorCoreF16MinArch;
  if (dtype == DType::bf16) return loaded_arch >= kTensorCoreBf16MinArch;
  return false;  // f32: the SIMT kernel on every card (no TF32: results match the CPU reference)
}

std::string describe_cuda_kernel_paths(int sm, int loaded_arch, DType precision) {
  const std::string name(dtype_name(precision));
  std::string conv;
  if (conv_uses_tensor_cores(precision, loaded_arch)) {
    conv = loaded_arch >= kAsyncCopyMinArch
               ? "tensor cores (mma.sync m16n8k16, ldmatrix, cp.async pipeline), f32 accumulation"
               : "tensor cores (mma.sync m16n8k8, ldmatrix), f32 accumulation";
  } else {
    conv = precision == DType::f32 ? "SIMT implicit GEMM, f32"
                                   : detail::concat("SIMT implicit GEMM, ", name, " storage with f32 arithmetic");
  }
  std::string gemm;
  if (precision == DType::bf16 && sm < kCublasBf16MinArch)
    gemm = "cuBLAS in f32 (no bf16 GEMM before sm_70: operands widened to f32, the result rounded to bf16)";
  else
    gemm = detail::concat("cuBLAS, ", name, " operands, f32 compute");
  const std::string elementwise =
      precision == DType::f32 ? "f32" : detail::concat(name, " storage, f32 arithmetic (every element-wise kernel)");
  return detail::concat("convolutions: ", conv, " (1x1 and dense; depthwise: its own SIMT kernel)\n",
                        "linear layers: ", gemm, "\n", "element-wise, batch norm, pooling, losses: ", elementwise);
}

}  // namespace sg
