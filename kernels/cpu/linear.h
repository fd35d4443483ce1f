#pragma once
// Fast CPU fully connected layer: OpenBLAS sgemm, f16/bf16 through f32 scratch buffers.
// Shapes as in kernels/linear.h: x [M, K], w [N, K], y [M, N]. Call from serial code only
// (OpenBLAS here is the pthread build and threads itself).
#include <cstdint>

#include "core/dtype.h"

namespace sg::cpu {

void linear_forward(DType dtype, const void* x, const void* w, const void* bias, void* y, int64_t M, int64_t K,
                    int64_t N);
void linear_backward_input(DType dtype, const void* dy, const void* w, void* dx, int64_t M, int64_t K, int64_t N);
void linear_backward_weight(DType dtype, const void* x, const void* dy, void* dw, void* dbias, int64_t M, int64_t K,
                            int64_t N);

}  // namespace sg::cpu
