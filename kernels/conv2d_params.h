#pragma once
// Geometry of a 2-D convolution, shared by the tensor API, the CPU code and the CUDA launchers
// (no tensor or CUDA types here).
//
// Layouts: x [N, H, W, Cin] (NHWC), w [Cout, kh, kw, Cin/groups] (OHWI), bias [Cout],
// y [N, Ho, Wo, Cout]. Depthwise is groups == Cin == Cout; pointwise is a 1x1 kernel.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace sg {

enum class Padding {
  symmetric,  // (k - 1) / 2 on every side: PyTorch, torchvision, timm (non-tf)
  tf_same,    // TensorFlow "SAME": Ho = ceil(H / stride), any odd pixel of padding after
};

struct Conv2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t groups = 1;
  // Dilation is always 1 (EfficientNet uses none).
};

struct Conv2dShape {
  int64_t n = 0, h = 0, w = 0, c_in = 0;  // input
  int64_t c_out = 0;
  int64_t out_h = 0, out_w = 0;
};

inline int64_t conv2d_output_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                                    int64_t pad_after) {
  return (in + pad_before + pad_after - kernel) / stride + 1;
}

// Padding for a square or rectangular kernel. TF-SAME depends on the input size, so it is
// resolved here, per input, into explicit pads: for an even input at stride 2 that is (0, 1)
// for k = 3 and (1, 2) for k = 5.
inline Conv2dParams make_conv2d_params(int64_t kernel_h, int64_t kernel_w, int64_t stride, Padding padding,
                                       int64_t in_h, int64_t in_w, int64_t groups = 1) {
  SG_CHECK(kernel_h > 0 && kernel_w > 0 && stride > 0 && groups > 0, "conv2d: kernel ", kernel_h, "x", kernel_w,
           ", stride ", stride, ", groups ", groups, " must all be positive");
  Conv2dParams p;
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.stride_h = p.stride_w = stride;
  p.groups = groups;
  auto resolve = [&](int64_t in, int64_t k, int64_t& before, int64_t& after) {
    if (padding == Padding::symmetric) {
      before = after = (k - 1) / 2;
    } else {
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
      before = total / 2;
      after = total - before;
    }
  };
  resolve(in_h, kernel_h, p.pad_top, p.pad_bottom);
  resolve(in_w, kernel_w, p.pad_left, p.pad_right);
  return p;
}

inline std::string to_string(const Conv2dParams& p) {
  return detail::concat("kernel ", p.kernel_h, "x", p.kernel_w, " stride ", p.stride_h, "x", p.stride_w, " pad (",
                        p.pad_top, ",", p.pad_bottom, ",", p.pad_left, ",", p.pad_right, ") groups ", p.groups);
}

}  // namespace sg
