#pragma once
// Fast CPU pooling (OpenMP over batch rows / channel blocks, float inner loops over channels).
// f16/bf16 are converted to f32 scratch; arithmetic is f32. Same semantics as pooling_ref.h.
#include <cstdint>

#include "core/dtype.h"
#include "kernels/pooling_params.h"

namespace sg::cpu {

void max_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        int32_t* argmax);
void max_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const int32_t* argmax,
                         const void* dy, void* dx);
void avg_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y);
void avg_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* dy, void* dx);

// x [N, HW, C] -> y [N, C]
void global_avg_pool_forward(DType dtype, const void* x, void* y, int64_t n, int64_t hw, int64_t c);
void global_avg_pool_backward(DType dtype, const void* dy, void* dx, int64_t n, int64_t hw, int64_t c);
void global_max_pool_forward(DType dtype, const void* x, void* y, int32_t* argmax, int64_t n, int64_t hw, int64_t c);
void global_max_pool_backward(DType dtype, const int32_t* argmax, const void* dy, void* dx, int64_t n, int64_t hw,
                              int64_t c);
void gem_pool_forward(DType dtype, const void* x, float p, void* y, int64_t n, int64_t hw, int64_t c, float eps);
void gem_pool_backward(DType dtype, const void* x, float p, const void* dy, void* dx, float* dp, int64_t n, int64_t hw,
                       int64_t c, float eps);

}  // namespace sg::cpu
