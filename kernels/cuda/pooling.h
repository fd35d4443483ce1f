#pragma once
// CUDA pooling launchers (hand-written kernels; declared without CUDA headers). Same layouts and
// semantics as kernels/pooling.h; pointers are device pointers (x, y, dy, dx of `dtype`).
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/pooling_params.h"

namespace sg::cuda {

void max_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        int32_t* argmax, StreamHandle stream);
void max_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const int32_t* argmax,
                         const void* dy, void* dx, StreamHandle stream);
void avg_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        StreamHandle stream);
void avg_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* dy, void* dx,
                         StreamHandle stream);

// x [N, HW, C] -> y [N, C]
void global_avg_pool_forward(DType dtype, const void* x, void* y, int64_t n, int64_t hw, int64_t c,
                             StreamHandle stream);
void global_avg_pool_backward(DType dtype, const void* dy, void* dx, int64_t n, int64_t hw, int64_t c,
                              StreamHandle stream);
void global_max_pool_forward(DType dtype, const void* x, void* y, int32_t* argmax, int64_t n, int64_t hw, int64_t c,
                             StreamHandle stream);
void global_max_pool_backward(DType dtype, const int32_t* argmax, const void* dy, void* dx, int64_t n, int64_t hw,
                              int64_t c, StreamHandle stream);
// p and dp: device pointers to one float. workspace: n * c floats of device scratch.
void gem_pool_forward(DType dtype, const void* x, const float* p, void* y, int64_t n, int64_t hw, int64_t c, float eps,
                      StreamHandle stream);
void gem_pool_backward(DType dtype, const void* x, const float* p, const void* dy, void* dx, float* dp,
                       float* workspace, int64_t n, int64_t hw, int64_t c, float eps, StreamHandle stream);

}  // namespace sg::cuda
