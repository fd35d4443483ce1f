#pragma once
// CUDA fully connected layer launchers (declared without CUDA headers). The GEMMs run in
// cuBLAS (f32 compute); the bias broadcast and the bias gradient are hand-written kernels.
// `device` picks the cuBLAS handle; shapes as in kernels/linear.h.
#include <cstddef>
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace sg::cuda {

void linear_forward(DType dtype, int device, const void* x, const void* w, const void* bias, void* y, int64_t M,
                    int64_t K, int64_t N, StreamHandle stream);
void linear_backward_input(DType dtype, int device, const void* dy, const void* w, void* dx, int64_t M, int64_t K,
                           int64_t N, StreamHandle stream);
void linear_backward_weight(DType dtype, int device, const void* x, const void* dy, void* dw, void* dbias, int64_t M,
                            int64_t K, int64_t N, StreamHandle stream);

// Bytes of the cuBLAS workspace that `device`'s GEMMs hold from sg::Allocator (so --memory-limit
// counts it): 0 before the first GEMM, then 4 MiB (32 MiB from Hopper on) for the process.
size_t cublas_workspace_bytes_held(int device);

}  // namespace sg::cuda
