#pragma once
// Fast CPU convolution. Dense, pointwise and grouped convolutions are implicit GEMMs on
// OpenBLAS (im2col in bounded chunks of output rows; a 1x1 stride-1 convolution needs none);
// depthwise convolutions (groups == Cin == Cout) are direct NHWC loops vectorised over
// channels. f16/bf16 are converted to f32 in scratch buffers; accumulation is f32.
// Same layouts and semantics as kernels/conv2d.h; pointers are host pointers of `dtype`.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/conv2d_params.h"
#include "kernels/scalar_math.h"

namespace sg::cpu {

// Bound on the scratch memory of one call: im2col columns and f32 copies of 16-bit data are
// made per chunk of output rows (at least one row) or per block of images (at least one image).
// Tests pass a tiny bound to exercise the chunking on small shapes.
inline constexpr int64_t kConv2dScratchBytes = int64_t(64) << 20;

// The scratch one call below takes from the CPU allocator (each buffer as a Tensor, so it counts
// against the memory cap), and the chunking that decides it: computed here once, used by the
// kernels to size their buffers and loops and by conv2d's meta branch (kernels/conv2d.cpp) to count them.
enum class Conv2dPass { forward, backward_input, backward_weight };
struct Conv2dCpuWorkspace {
  int64_t rows_per_chunk = 1;          // output rows (of out_w pixels) per im2col / GEMM chunk
  int64_t images_per_block = 1;        // images per block where 16-bit data is converted whole images at a time
  std::vector<int64_t> buffer_floats;  // each buffer the call allocates, in order; all live until it returns
};
Conv2dCpuWorkspace conv2d_cpu_workspace(Conv2dPass pass, const Conv2dParams& p, const Conv2dShape& s, DType dtype,
                                        int64_t scratch_bytes = kConv2dScratchBytes);
// The bytes a buffer of `floats` takes: at least one float (an empty buffer still allocates).
inline size_t conv2d_cpu_buffer_bytes(int64_t floats) { return size_t(floats > 1 ? floats : 1) * sizeof(float); }

void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                    const void* bias, void* y, int64_t scratch_bytes = kConv2dScratchBytes);
void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy, const void* w,
                           void* dx, int64_t scratch_bytes = kConv2dScratchBytes);
void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* dy,
                            void* dw, void* dbias, int64_t scratch_bytes = kConv2dScratchBytes);

// Inference: y = act(conv2d(x, w) + bias), bias f32 [Cout] or null. Depthwise convolutions add the bias and
// apply the activation to each output pixel while it is in L1 (one pass over y); the others run
// the GEMM, then one bias + activation pass (kernels/cpu/bias_activation.h).
void conv2d_bias_activation_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                                    const void* w, const float* bias, math::Activation act, void* y,
                                    int64_t scratch_bytes = kConv2dScratchBytes);

// Inference, squeeze-excite gate + 1x1 convolution: y[n] = act((x[n] * gate[n]) w^T + bias), x [N, H, W, Cin],
// gate [N, Cin] (x's dtype), w [Cout, 1, 1, Cin], bias f32 [Cout] or null, y [N, H, W, Cout]. The gate
// scales a per-image copy of the weights, so x * gate is never written.
void pointwise_gated_forward(int64_t n, int64_t hw, int64_t c_in, int64_t c_out, DType dtype, const void* x,
                             const void* gate, const void* w, const float* bias, math::Activation act, void* y);

}  // namespace sg::cpu
