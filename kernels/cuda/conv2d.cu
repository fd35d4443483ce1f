// CUDA convolution launchers: depthwise (groups == Cin == Cout) takes the direct kernels of
// conv2d_depthwise.cu, everything else (dense, pointwise, grouped) the implicit GEMMs of
// conv2d_implicit_gemm.cu. Empty tensors are handled here so the kernels never see a zero grid.
#include "kernels/cuda/conv2d.h"

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_internal.h"

namespace sg::cuda {
namespace {

void zero(void* p, int64_t elems, DType dtype, StreamHandle stream) {
  if (p && elems > 0) SG_CUDA_CHECK(cudaMemsetAsync(p, 0, size_t(elems) * dtype_size(dtype), stream));
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                    const void* bias, void* y, StreamHandle stream) {
  if (s.n * s.out_h * s.out_w * s.c_out == 0) return;
  if (conv2d_detail::is_depthwise(p, s))
    conv2d_detail::depthwise_forward(p, s, dtype, x, w, bias, y, stream);
  else
    conv2d_detail::implicit_gemm_forward(p, s, dtype, x, w, bias, y, stream);
}

void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy, const void* w,
                           void* dx, StreamHandle stream) {
  if (s.n * s.h * s.w * s.c_in == 0) return;
  if (s.out_h * s.out_w * s.c_out == 0) return zero(dx, s.n * s.h * s.w * s.c_in, dtype, stream);
  if (conv2d_detail::is_depthwise(p, s))
    conv2d_detail::depthwise_backward_input(p, s, dtype, dy, w, dx, stream);
  else
    conv2d_detail::implicit_gemm_backward_input(p, s, dtype, dy, w, dx, stream);
}

void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* dy,
                            void* dw, void* dbias, StreamHandle stream) {
  if (s.n * s.out_h * s.out_w == 0) {  // no pixels: every gradient is an empty sum
    zero(dw, s.c_out * p.kernel_h * p.kernel_w * (s.c_in / p.groups), dtype, stream);
    zero(dbias, s.c_out, dtype, stream);
    return;
  }
  if (conv2d_detail::is_depthwise(p, s))
    conv2d_detail::depthwise_backward_weight(p, s, dtype, x, dy, dw, dbias, stream);
  else
    conv2d_detail::implicit_gemm_backward_weight(p, s, dtype, x, dy, dw, dbias, stream);
}

}  // namespace sg::cuda
