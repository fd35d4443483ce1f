// kernels/cuda/conv2d_implicit_gemm.cu compiled for sm_61: the file chooses between the SIMT
// fallback, mma.sync m16n8k8 with plain loads and mma.sync m16n8k16 with cp.async by
// __CUDA_ARCH__ at compile time, so the emulated build compiles it once per card personality
// (conv2d_implicit_gemm_dispatch.cpp calls the one of the emulated card).
#define __CUDA_ARCH__ 610
#include <cuda_runtime.h>
#define implicit_gemm_forward implicit_gemm_forward_sm61
#define implicit_gemm_backward_input implicit_gemm_backward_input_sm61
#define implicit_gemm_backward_weight implicit_gemm_backward_weight_sm61
#include "kernels/cuda/conv2d_implicit_gemm.cu.cpp"
