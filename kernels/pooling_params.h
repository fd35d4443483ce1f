#pragma once
// Geometry of 2-D max / average pooling, shared by the tensor API, the CPU code and the CUDA
// launchers (no tensor or CUDA types here).
//
// Layouts: x [N, H, W, C] (NHWC), y [N, Ho, Wo, C], argmax [N, Ho, Wo, C] (i32, the index
// ih * W + iw of the winner inside its input plane, as PyTorch returns it).
// Ho = (H + pad_top + pad_bottom - kernel_h) / stride_h + 1 (floor; no ceil mode).
#include <cstdint>
#include <string>

#include "core/error.h"

namespace sg {

struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  // Explicit padding like Conv2dParams (asymmetric allowed, e.g. TF "SAME"). Each pad must be
  // smaller than the kernel so every window holds at least one real pixel. Padded cells never
  // win a max; for the average they count only when count_include_pad is set.
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  // Average pooling only: divide by the whole window (PyTorch's default) or by the real pixels.
  bool count_include_pad = true;
};

struct Pool2dShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input
  int64_t out_h = 0, out_w = 0;
};

inline int64_t pool2d_output_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                                    int64_t pad_after) {
  return (in + pad_before + pad_after - kernel) / stride + 1;
}

// A square kernel with symmetric padding (PyTorch's F.max_pool2d(x, k, stride, padding)).
inline Pool2dParams make_pool2d_params(int64_t kernel, int64_t stride, int64_t padding = 0,
                                       bool count_include_pad = true) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = padding;
  p.count_include_pad = count_include_pad;
  return p;
}

inline std::string to_string(const Pool2dParams& p) {
  return detail::concat("kernel ", p.kernel_h, "x", p.kernel_w, " stride ", p.stride_h, "x", p.stride_w, " pad (",
                        p.pad_top, ",", p.pad_bottom, ",", p.pad_left, ",", p.pad_right, ")",
                        p.count_include_pad ? "" : " count_include_pad=false");
}

}  // namespace sg
