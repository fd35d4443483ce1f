#pragma once
// Reference pooling: one obvious loop nest per op, NHWC. Templated on the storage type so the
// tests can run them in double for finite differences (acc_t<double> is double).
#include <cstdint>
#include <vector>

#include "core/half.h"
#include "kernels/pooling_math.h"
#include "kernels/pooling_params.h"

namespace sg::cpu::ref {

// x [N, H, W, C] -> y [N, Ho, Wo, C], argmax (nullable) [N, Ho, Wo, C] = ih * W + iw.
template <class T>
void max_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        for (int64_t c = 0; c < s.c; ++c) {
          bool found = false;
          A best = 0;
          int64_t best_index = 0;
          for (int64_t i = 0; i < p.kernel_h; ++i)
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t ih = oh * p.stride_h - p.pad_top + i, iw = ow * p.stride_w - p.pad_left + j;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // padding never wins
              const A v = to_acc(x[((n * s.h + ih) * s.w + iw) * s.c + c]);
              if (!found || math::max_pool_takes(v, best)) {
                best = v;
                best_index = ih * s.w + iw;
                found = true;
              }
            }
          const int64_t o = ((n * s.out_h + oh) * s.out_w + ow) * s.c + c;
          y[o] = from_acc<T>(best);
          if (argmax) argmax[o] = int32_t(best_index);
        }
}

// Scatter form: dx = 0, then dx[argmax] += dy (accumulated in acc_t).
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const int32_t* argmax, const T* dy, T* dx) {
  std::vector<acc_t<T>> acc(size_t(s.n * s.h * s.w * s.c), acc_t<T>(0));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t o = 0; o < s.out_h * s.out_w; ++o)
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t i = (n * s.out_h * s.out_w + o) * s.c + c;
        acc[size_t((n * s.h * s.w + argmax[i]) * s.c + c)] += to_acc(dy[i]);
      }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = from_acc<T>(acc[i]);
}

template <class T>
void avg_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, const T* x, T* y) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
        const A divisor = A(math::avg_pool_divisor(h0, w0, p.kernel_h, p.kernel_w, s.h, s.w, p.pad_bottom,
                                                   p.pad_right, p.count_include_pad));
        for (int64_t c = 0; c < s.c; ++c) {
          A sum = 0;
          for (int64_t ih = h0; ih < h0 + p.kernel_h; ++ih)
            for (int64_t iw = w0; iw < w0 + p.kernel_w; ++iw)
              if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) sum += to_acc(x[((n * s.h + ih) * s.w + iw) * s.c + c]);
          y[((n * s.out_h + oh) * s.out_w + ow) * s.c + c] = from_acc<T>(sum / divisor);
        }
      }
}

// Scatter form: every window spreads dy / divisor over its real pixels.
template <class T>
void avg_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, const T* dy, T* dx) {
  using A = acc_t<T>;
  std::vector<A> acc(size_t(s.n * s.h * s.w * s.c), A(0));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
        const A divisor = A(math::avg_pool_divisor(h0, w0, p.kernel_h, p.kernel_w, s.h, s.w, p.pad_bottom,
                                                   p.pad_right, p.count_include_pad));
        for (int64_t c = 0; c < s.c; ++c) {
          const A g = to_acc(dy[((n * s.out_h + oh) * s.out_w + ow) * s.c + c]) / divisor;
          for (int64_t ih = h0; ih < h0 + p.kernel_h; ++ih)
            for (int64_t iw = w0; iw < w0 + p.kernel_w; ++iw)
              if (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) acc[size_t(((n * s.h + ih) * s.w + iw) * s.c + c)] += g;
        }
      }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = from_acc<T>(acc[i]);
}

// x [N, HW, C] -> y [N, C]
template <class T>
void global_avg_pool_forward(const T* x, T* y, int64_t n_batch, int64_t hw, int64_t c) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t k = 0; k < c; ++k) {
      A sum = 0;
      for (int64_t i = 0; i < hw; ++i) sum += to_acc(x[(n * hw + i) * c + k]);
      y[n * c + k] = from_acc<T>(sum / A(hw));
    }
}

template <class T>
void global_avg_pool_backward(const T* dy, T* dx, int64_t n_batch, int64_t hw, int64_t c) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t k = 0; k < c; ++k) dx[(n * hw + i) * c + k] = from_acc<T>(to_acc(dy[n * c + k]) / A(hw));
}

// argmax (nullable) [N, C] = h * W + w of the first maximum.
template <class T>
void global_max_pool_forward(const T* x, T* y, int32_t* argmax, int64_t n_batch, int64_t hw, int64_t c) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t k = 0; k < c; ++k) {
      A best = to_acc(x[n * hw * c + k]);
      int64_t best_index = 0;
      for (int64_t i = 1; i < hw; ++i) {
        const A v = to_acc(x[(n * hw + i) * c + k]);
        if (math::max_pool_takes(v, best)) {
          best = v;
          best_index = i;
        }
      }
      y[n * c + k] = from_acc<T>(best);
      if (argmax) argmax[n * c + k] = int32_t(best_index);
    }
}

template <class T>
void global_max_pool_backward(const int32_t* argmax, const T* dy, T* dx, int64_t n_batch, int64_t hw, int64_t c) {
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t k = 0; k < c; ++k)
        dx[(n * hw + i) * c + k] = argmax[n * c + k] == i ? dy[n * c + k] : from_acc<T>(acc_t<T>(0));
}

// GeM: y[n, k] = (mean_i clamp(x, eps)^p)^(1/p).
template <class T>
void gem_pool_forward(const T* x, acc_t<T> p, T* y, int64_t n_batch, int64_t hw, int64_t c, acc_t<T> eps) {
  using A = acc_t<T>;
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t k = 0; k < c; ++k) {
      A sum = 0;
      for (int64_t i = 0; i < hw; ++i) sum += math::pow_(math::gem_clamp(to_acc(x[(n * hw + i) * c + k]), eps), p);
      y[n * c + k] = from_acc<T>(math::gem_output(sum / A(hw), p));
    }
}

// dx [N, HW, C] and *dp = sum over n, k of dy * dy/dp.
template <class T>
void gem_pool_backward(const T* x, acc_t<T> p, const T* dy, T* dx, acc_t<T>* dp, int64_t n_batch, int64_t hw,
                       int64_t c, acc_t<T> eps) {
  using A = acc_t<T>;
  A dp_sum = 0;
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t k = 0; k < c; ++k) {
      A sum = 0, sum_log = 0;
      for (int64_t i = 0; i < hw; ++i) {
        const A xc = math::gem_clamp(to_acc(x[(n * hw + i) * c + k]), eps);
        const A xp = math::pow_(xc, p);
        sum += xp;
        sum_log += xp * math::log_(xc);
      }
      const A m = sum / A(hw), ml = sum_log / A(hw);
      const A g = to_acc(dy[n * c + k]);
      dp_sum += g * math::gem_dy_dp(m, ml, p);
      const A coefficient = g * math::gem_input_coefficient(m, p, A(hw));
      for (int64_t i = 0; i < hw; ++i) {
        const A xv = to_acc(x[(n * hw + i) * c + k]);
        const A xc = math::gem_clamp(xv, eps);
        dx[(n * hw + i) * c + k] =
            from_acc<T>(coefficient * math::pow_(xc, p - A(1)) * math::gem_clamp_grad_mask(xv, eps));
      }
    }
  *dp = dp_sum;
}

}  // namespace sg::cpu::ref
