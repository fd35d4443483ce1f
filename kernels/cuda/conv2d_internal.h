#pragma once
// Internal entry points of the CUDA convolution (kernels/cuda/conv2d*.cu); kernels/cuda/conv2d.cu
// picks one per call. Same layouts and semantics as kernels/cuda/conv2d.h. No CUDA headers.
#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "kernels/conv2d_params.h"

namespace sg::cuda::conv2d_detail {

// Depthwise: groups == Cin == Cout (one filter per channel), direct kernels.
bool is_depthwise(const Conv2dParams& p, const Conv2dShape& s);
void depthwise_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                       const void* bias, void* y, StreamHandle stream);
void depthwise_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy,
                              const void* w, void* dx, StreamHandle stream);
void depthwise_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                               const void* dy, void* dw, void* dbias, StreamHandle stream);

// Dense, pointwise and grouped: implicit GEMM (tensor cores for f16/bf16 when the channels per
// group are multiples of 8, a tiled SIMT kernel otherwise).
void implicit_gemm_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                           const void* bias, void* y, StreamHandle stream);
void implicit_gemm_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy,
                                  const void* w, void* dx, StreamHandle stream);
void implicit_gemm_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                   const void* dy, void* dw, void* dbias, StreamHandle stream);

}  // namespace sg::cuda::conv2d_detail
