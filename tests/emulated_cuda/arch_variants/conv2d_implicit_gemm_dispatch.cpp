// The entry points of kernels/cuda/conv2d_implicit_gemm.cu on the emulated device: each calls the
// copy compiled for the emulated card's architecture (conv2d_implicit_gemm_sm*.cpp), as a real
// GPU would load the code built for it.
#include "kernels/cuda/conv2d_internal.h"
#include "tests/emulated_cuda/machine.h"

namespace sg::cuda::conv2d_detail {

#define SG_EMU_DECLARE_VARIANT(arch)                                                                             \
  void implicit_gemm_forward_##arch(const Conv2dParams&, const Conv2dShape&, DType, const void*, const void*,    \
                                    const void*, void*, StreamHandle);                                          \
  void implicit_gemm_backward_input_##arch(const Conv2dParams&, const Conv2dShape&, DType, const void*,          \
                                           const void*, void*, StreamHandle);                                   \
  void implicit_gemm_backward_weight_##arch(const Conv2dParams&, const Conv2dShape&, DType, const void*,         \
                                            const void*, void*, void*, StreamHandle);
SG_EMU_DECLARE_VARIANT(sm61)
SG_EMU_DECLARE_VARIANT(sm75)
SG_EMU_DECLARE_VARIANT(sm90)
#undef SG_EMU_DECLARE_VARIANT

#define SG_EMU_DISPATCH(function, ...)                                                   \
  switch (sg_emu::personality().arch()) {                                               \
    case 610: return function##_sm61(__VA_ARGS__);                                      \
    case 750: return function##_sm75(__VA_ARGS__);                                      \
    case 900: return function##_sm90(__VA_ARGS__);                                      \
  }                                                                                     \
  sg_emu::fault("conv2d: no code compiled for the emulated card's architecture")

void implicit_gemm_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                           const void* bias, void* y, StreamHandle stream) {
  SG_EMU_DISPATCH(implicit_gemm_forward, p, s, dtype, x, w, bias, y, stream);
}
void implicit_gemm_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy,
                                  const void* w, void* dx, StreamHandle stream) {
  SG_EMU_DISPATCH(implicit_gemm_backward_input, p, s, dtype, dy, w, dx, stream);
}
void implicit_gemm_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                   const void* dy, void* dw, void* dbias, StreamHandle stream) {
  SG_EMU_DISPATCH(implicit_gemm_backward_weight, p, s, dtype, x, dy, dw, dbias, stream);
}

}  // namespace sg::cuda::conv2d_detail
