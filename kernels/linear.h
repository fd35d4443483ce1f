#pragma once
// Fully connected layer, PyTorch layout: y = x w^T + b.
// Storage f32, f16 or bf16 (x, w, bias, y, gradients all the same dtype), f32 accumulation.
//
//   x    [M, K]      (M rows: the batch)
//   w    [Nout, K]   (torch.nn.Linear.weight)
//   bias [Nout] or nullptr
//   y    [M, Nout]
//
// Every output is overwritten, never accumulated into. Errors name the op and the shapes.
// CPU: OpenBLAS sgemm (f16/bf16 through f32 scratch). CUDA: cuBLAS GEMM (f32 compute) plus
// hand-written bias and bias-gradient kernels.
#include "core/tensor.h"

namespace sg {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const Stream& stream = {});
// dx [M, K] = dy [M, Nout] w [Nout, K]
void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, const Stream& stream = {});
// dw [Nout, K] = dy^T x; dbias [Nout] = sum of dy over the rows (skipped when nullptr).
void linear_backward_weight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias, const Stream& stream = {});

// Bytes of the cuBLAS workspace `device`'s handle holds now (taken from the allocator at the first
// GEMM, then kept): 0 before it, on the CPU, and in a build without CUDA.
size_t cublas_workspace_bytes_held(const Device& device);

}  // namespace sg
