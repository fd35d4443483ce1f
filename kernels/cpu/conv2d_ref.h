#pragma once
// Reference 2-D convolution: one obvious loop nest per direction, NHWC activations, OHWI
// weights. Templated on the storage type T with acc_t<T> arithmetic so the tests can run it in
// double (finite differences) and in float/Half/BFloat16 (the oracle for the fast paths).
//
//   x  [N, H, W, Cin]    w [Cout, kh, kw, Cin/groups]    bias [Cout] (may be null)
//   y  [N, Ho, Wo, Cout]
// Input pixel of output (oh, ow) and tap (i, j): (oh * stride_h - pad_top + i, ow * stride_w - pad_left + j);
// taps outside the image read zero.
#include <cstdint>

#include "core/half.h"
#include "kernels/conv2d_params.h"

namespace sg::cpu::ref {

template <class T>
void conv2d_forward(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  using A = acc_t<T>;
  const int64_t cin_g = s.c_in / p.groups, cout_g = s.c_out / p.groups;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        for (int64_t co = 0; co < s.c_out; ++co) {
          const int64_t g = co / cout_g;
          A acc = bias ? to_acc(bias[co]) : A(0);
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            const int64_t ih = oh * p.stride_h - p.pad_top + i;
            if (ih < 0 || ih >= s.h) continue;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t iw = ow * p.stride_w - p.pad_left + j;
              if (iw < 0 || iw >= s.w) continue;
              for (int64_t c = 0; c < cin_g; ++c)
                acc += to_acc(x[((n * s.h + ih) * s.w + iw) * s.c_in + g * cin_g + c]) *
                       to_acc(w[((co * p.kernel_h + i) * p.kernel_w + j) * cin_g + c]);
            }
          }
          y[((n * s.out_h + oh) * s.out_w + ow) * s.c_out + co] = from_acc<T>(acc);
        }
}

// dx[n, ih, iw, ci] = sum over the outputs (oh, ow) and output channels co that read it of
// dy[n, oh, ow, co] * w[co, i, j, ci - g * cin_g]. Written as a gather so each dx is one sum.
template <class T>
void conv2d_backward_input(const Conv2dParams& p, const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  using A = acc_t<T>;
  const int64_t cin_g = s.c_in / p.groups, cout_g = s.c_out / p.groups;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t ih = 0; ih < s.h; ++ih)
      for (int64_t iw = 0; iw < s.w; ++iw)
        for (int64_t ci = 0; ci < s.c_in; ++ci) {
          const int64_t g = ci / cin_g, c = ci - g * cin_g;
          A acc = 0;
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            const int64_t th = ih + p.pad_top - i;  // = oh * stride_h
            if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= s.out_h) continue;
            const int64_t oh = th / p.stride_h;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t tw = iw + p.pad_left - j;
              if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= s.out_w) continue;
              const int64_t ow = tw / p.stride_w;
              for (int64_t co = g * cout_g; co < (g + 1) * cout_g; ++co)
                acc += to_acc(dy[((n * s.out_h + oh) * s.out_w + ow) * s.c_out + co]) *
                       to_acc(w[((co * p.kernel_h + i) * p.kernel_w + j) * cin_g + c]);
            }
          }
          dx[((n * s.h + ih) * s.w + iw) * s.c_in + ci] = from_acc<T>(acc);
        }
}

// dw[co, i, j, c] = sum over n, oh, ow of x[n, ih, iw, g * cin_g + c] * dy[n, oh, ow, co];
// dbias[co] = sum over n, oh, ow of dy[n, oh, ow, co] (skipped when dbias is null).
template <class T>
void conv2d_backward_weight(const Conv2dParams& p, const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  using A = acc_t<T>;
  const int64_t cin_g = s.c_in / p.groups, cout_g = s.c_out / p.groups;
  for (int64_t co = 0; co < s.c_out; ++co) {
    const int64_t g = co / cout_g;
    for (int64_t i = 0; i < p.kernel_h; ++i)
      for (int64_t j = 0; j < p.kernel_w; ++j)
        for (int64_t c = 0; c < cin_g; ++c) {
          A acc = 0;
          for (int64_t n = 0; n < s.n; ++n)
            for (int64_t oh = 0; oh < s.out_h; ++oh) {
              const int64_t ih = oh * p.stride_h - p.pad_top + i;
              if (ih < 0 || ih >= s.h) continue;
              for (int64_t ow = 0; ow < s.out_w; ++ow) {
                const int64_t iw = ow * p.stride_w - p.pad_left + j;
                if (iw < 0 || iw >= s.w) continue;
                acc += to_acc(x[((n * s.h + ih) * s.w + iw) * s.c_in + g * cin_g + c]) *
                       to_acc(dy[((n * s.out_h + oh) * s.out_w + ow) * s.c_out + co]);
              }
            }
          dw[((co * p.kernel_h + i) * p.kernel_w + j) * cin_g + c] = from_acc<T>(acc);
        }
    if (dbias) {
      A acc = 0;
      for (int64_t m = 0; m < s.n * s.out_h * s.out_w; ++m) acc += to_acc(dy[m * s.c_out + co]);
      dbias[co] = from_acc<T>(acc);
    }
  }
}

}  // namespace sg::cpu::ref
