#include "kernels/cpu/pooling.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "kernels/pooling_math.h"

namespace sg::cpu {
namespace {

constexpr int64_t kChannelBlock = 128;  // channels per task in the global pools: a few cache lines

// The output rows [first, last] whose windows (kernel k, stride s) cover input row i.
inline void covering_windows(int64_t i, int64_t k, int64_t s, int64_t pad_before, int64_t out_extent, int64_t& first,
                             int64_t& last) {
  const int64_t lo = i + pad_before - k + 1;
  first = lo <= 0 ? 0 : (lo + s - 1) / s;
  last = std::min((i + pad_before) / s, out_extent - 1);
}

void max_pool2d_forward_f32(const Pool2dParams& p, const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t C = s.c;
#pragma omp parallel
  {
    std::vector<int32_t> index(static_cast<size_t>(C));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        const int64_t h0 = oh * p.stride_h - p.pad_top;
        const int64_t ih0 = std::max<int64_t>(h0, 0), ih1 = std::min(h0 + p.kernel_h, s.h);
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          const int64_t w0 = ow * p.stride_w - p.pad_left;
          const int64_t iw0 = std::max<int64_t>(w0, 0), iw1 = std::min(w0 + p.kernel_w, s.w);
          float* out = y + ((n * s.out_h + oh) * s.out_w + ow) * C;
          // The first real cell starts the scan (padding never wins), then scan order.
          const float* first = x + ((n * s.h + ih0) * s.w + iw0) * C;
          const int32_t first_index = int32_t(ih0 * s.w + iw0);
          for (int64_t c = 0; c < C; ++c) {
            out[c] = first[c];
            index[size_t(c)] = first_index;
          }
          for (int64_t ih = ih0; ih < ih1; ++ih)
            for (int64_t iw = (ih == ih0 ? iw0 + 1 : iw0); iw < iw1; ++iw) {
              const float* in = x + ((n * s.h + ih) * s.w + iw) * C;
              const int32_t here = int32_t(ih * s.w + iw);
              for (int64_t c = 0; c < C; ++c) {
                const bool take = math::max_pool_takes(in[c], out[c]);
                out[c] = take ? in[c] : out[c];
                index[size_t(c)] = take ? here : index[size_t(c)];
              }
            }
          if (argmax) std::copy(index.begin(), index.end(), argmax + ((n * s.out_h + oh) * s.out_w + ow) * C);
        }
      }
  }
}

// Gather form: each input pixel sums the dy of the windows whose argmax it is, in window order.
void max_pool2d_backward_f32(const Pool2dParams& p, const Pool2dShape& s, const int32_t* argmax, const float* dy,
                             float* dx) {
  const int64_t C = s.c;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t ih = 0; ih < s.h; ++ih) {
      int64_t oh0, oh1;
      covering_windows(ih, p.kernel_h, p.stride_h, p.pad_top, s.out_h, oh0, oh1);
      for (int64_t iw = 0; iw < s.w; ++iw) {
        int64_t ow0, ow1;
        covering_windows(iw, p.kernel_w, p.stride_w, p.pad_left, s.out_w, ow0, ow1);
        float* out = dx + ((n * s.h + ih) * s.w + iw) * C;
        const int32_t here = int32_t(ih * s.w + iw);
        for (int64_t c = 0; c < C; ++c) out[c] = 0.0f;
        for (int64_t oh = oh0; oh <= oh1; ++oh)
          for (int64_t ow = ow0; ow <= ow1; ++ow) {
            const int64_t o = ((n * s.out_h + oh) * s.out_w + ow) * C;
            for (int64_t c = 0; c < C; ++c) out[c] += argmax[o + c] == here ? dy[o + c] : 0.0f;
          }
      }
    }
}

void avg_pool2d_forward_f32(const Pool2dParams& p, const Pool2dShape& s, const float* x, float* y) {
  const int64_t C = s.c;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_top;
      const int64_t ih0 = std::max<int64_t>(h0, 0), ih1 = std::min(h0 + p.kernel_h, s.h);
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_left;
        const int64_t iw0 = std::max<int64_t>(w0, 0), iw1 = std::min(w0 + p.kernel_w, s.w);
        const float divisor = float(math::avg_pool_divisor(h0, w0, p.kernel_h, p.kernel_w, s.h, s.w, p.pad_bottom,
                                                           p.pad_right, p.count_include_pad));
        float* out = y + ((n * s.out_h + oh) * s.out_w + ow) * C;
        for (int64_t c = 0; c < C; ++c) out[c] = 0.0f;
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t iw = iw0; iw < iw1; ++iw) {
            const float* in = x + ((n * s.h + ih) * s.w + iw) * C;
            for (int64_t c = 0; c < C; ++c) out[c] += in[c];
          }
        for (int64_t c = 0; c < C; ++c) out[c] /= divisor;
      }
    }
}

void avg_pool2d_backward_f32(const Pool2dParams& p, const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t C = s.c;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t ih = 0; ih < s.h; ++ih) {
      int64_t oh0, oh1;
      covering_windows(ih, p.kernel_h, p.stride_h, p.pad_top, s.out_h, oh0, oh1);
      for (int64_t iw = 0; iw < s.w; ++iw) {
        int64_t ow0, ow1;
        covering_windows(iw, p.kernel_w, p.stride_w, p.pad_left, s.out_w, ow0, ow1);
        float* out = dx + ((n * s.h + ih) * s.w + iw) * C;
        for (int64_t c = 0; c < C; ++c) out[c] = 0.0f;
        for (int64_t oh = oh0; oh <= oh1; ++oh)
          for (int64_t ow = ow0; ow <= ow1; ++ow) {
            const float divisor =
                float(math::avg_pool_divisor(oh * p.stride_h - p.pad_top, ow * p.stride_w - p.pad_left, p.kernel_h,
                                             p.kernel_w, s.h, s.w, p.pad_bottom, p.pad_right, p.count_include_pad));
            const float* g = dy + ((n * s.out_h + oh) * s.out_w + ow) * C;
            for (int64_t c = 0; c < C; ++c) out[c] += g[c] / divisor;
          }
      }
    }
}

// Global pools: one task per (sample, block of channels); rows of the block are converted to
// float and folded in order hw = 0, 1, ... so results do not depend on the thread count.
// fold(n, c0, width, i, row) is called with i = -1 to start a block; each thread folds with
// its own copy of `fold` (its captured accumulators are per thread).
template <class T, class Fold>
void for_channel_blocks(const T* x, int64_t n_batch, int64_t hw, int64_t c, const Fold& fold_prototype) {
  const int64_t blocks = (c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel
  {
    Fold fold = fold_prototype;
    float row[kChannelBlock];
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < n_batch; ++n)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t c0 = b * kChannelBlock, width = std::min(kChannelBlock, c - c0);
        fold(n, c0, width, -1, row);  // start
        for (int64_t i = 0; i < hw; ++i) {
          to_f32(x + (n * hw + i) * c + c0, row, width);
          fold(n, c0, width, i, row);
        }
      }
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        int32_t* argmax) {
  dispatch_floating(dtype, "max_pool2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const F32Input<T> xf(static_cast<const T*>(x), s.n * s.h * s.w * s.c);
    F32Output<T> yf(static_cast<T*>(y), s.n * s.out_h * s.out_w * s.c);
    max_pool2d_forward_f32(p, s, xf.get(), yf.get(), argmax);
    yf.store();
  });
}

void max_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const int32_t* argmax,
                         const void* dy, void* dx) {
  dispatch_floating(dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const F32Input<T> dyf(static_cast<const T*>(dy), s.n * s.out_h * s.out_w * s.c);
    F32Output<T> dxf(static_cast<T*>(dx), s.n * s.h * s.w * s.c);
    max_pool2d_backward_f32(p, s, argmax, dyf.get(), dxf.get());
    dxf.store();
  });
}

void avg_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y) {
  dispatch_floating(dtype, "avg_pool2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const F32Input<T> xf(static_cast<const T*>(x), s.n * s.h * s.w * s.c);
    F32Output<T> yf(static_cast<T*>(y), s.n * s.out_h * s.out_w * s.c);
    avg_pool2d_forward_f32(p, s, xf.get(), yf.get());
    yf.store();
  });
}

void avg_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* dy, void* dx) {
  dispatch_floating(dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const F32Input<T> dyf(static_cast<const T*>(dy), s.n * s.out_h * s.out_w * s.c);
    F32Output<T> dxf(static_cast<T*>(dx), s.n * s.h * s.w * s.c);
    avg_pool2d_backward_f32(p, s, dyf.get(), dxf.get());
    dxf.store();
  });
}

void global_avg_pool_forward(DType dtype, const void* x, void* y, int64_t n, int64_t hw, int64_t c) {
  dispatch_floating(dtype, "global_avg_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(y);
    for_channel_blocks(static_cast<const T*>(x), n, hw, c,
                       [&, sum = std::vector<float>()](int64_t b, int64_t c0, int64_t width, int64_t i,
                                                       const float* row) mutable {
                         if (i < 0) return sum.assign(size_t(width), 0.0f);
                         for (int64_t k = 0; k < width; ++k) sum[size_t(k)] += row[k];
                         if (i == hw - 1) {
                           for (int64_t k = 0; k < width; ++k) sum[size_t(k)] /= float(hw);
                           from_f32(sum.data(), out + b * c + c0, width);
                         }
                       });
  });
}

void global_avg_pool_backward(DType dtype, const void* dy, void* dx, int64_t n, int64_t hw, int64_t c) {
  dispatch_floating(dtype, "global_avg_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t k = 0; k < c; ++k) out[(b * hw + i) * c + k] = from_acc<T>(to_acc(g[b * c + k]) / float(hw));
  });
}

void global_max_pool_forward(DType dtype, const void* x, void* y, int32_t* argmax, int64_t n, int64_t hw, int64_t c) {
  dispatch_floating(dtype, "global_max_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(y);
    for_channel_blocks(static_cast<const T*>(x), n, hw, c,
                       [&, best = std::vector<float>(), index = std::vector<int32_t>()](
                           int64_t b, int64_t c0, int64_t width, int64_t i, const float* row) mutable {
                         if (i < 0) {
                           best.assign(size_t(width), 0.0f);
                           index.assign(size_t(width), 0);
                           return;
                         }
                         if (i == 0) {
                           std::copy(row, row + width, best.begin());
                         } else {
                           for (int64_t k = 0; k < width; ++k) {
                             const bool take = math::max_pool_takes(row[k], best[size_t(k)]);
                             best[size_t(k)] = take ? row[k] : best[size_t(k)];
                             index[size_t(k)] = take ? int32_t(i) : index[size_t(k)];
                           }
                         }
                         if (i == hw - 1) {
                           from_f32(best.data(), out + b * c + c0, width);
                           if (argmax) std::copy(index.begin(), index.end(), argmax + b * c + c0);
                         }
                       });
  });
}

void global_max_pool_backward(DType dtype, const int32_t* argmax, const void* dy, void* dx, int64_t n, int64_t hw,
                              int64_t c) {
  dispatch_floating(dtype, "global_max_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    const T zero = from_acc<T>(0.0f);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t k = 0; k < c; ++k) out[(b * hw + i) * c + k] = argmax[b * c + k] == i ? g[b * c + k] : zero;
  });
}

void gem_pool_forward(DType dtype, const void* x, float p, void* y, int64_t n, int64_t hw, int64_t c, float eps) {
  dispatch_floating(dtype, "gem_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = static_cast<T*>(y);
    for_channel_blocks(static_cast<const T*>(x), n, hw, c,
                       [&, sum = std::vector<float>()](int64_t b, int64_t c0, int64_t width, int64_t i,
                                                       const float* row) mutable {
                         if (i < 0) return sum.assign(size_t(width), 0.0f);
                         for (int64_t k = 0; k < width; ++k) sum[size_t(k)] += math::pow_(math::gem_clamp(row[k], eps), p);
                         if (i == hw - 1) {
                           for (int64_t k = 0; k < width; ++k) sum[size_t(k)] = math::gem_output(sum[size_t(k)] / float(hw), p);
                           from_f32(sum.data(), out + b * c + c0, width);
                         }
                       });
  });
}

void gem_pool_backward(DType dtype, const void* x, float p, const void* dy, void* dx, float* dp, int64_t n, int64_t hw,
                       int64_t c, float eps) {
  dispatch_floating(dtype, "gem_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xt = static_cast<const T*>(x);
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    const int64_t blocks = (c + kChannelBlock - 1) / kChannelBlock;
    // dy/dp partial sums per (sample, block), added up in a fixed order afterwards.
    std::vector<double> dp_parts(size_t(n * blocks), 0.0);
#pragma omp parallel
    {
      float row[kChannelBlock], sum[kChannelBlock], sum_log[kChannelBlock], coefficient[kChannelBlock];
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t c0 = blk * kChannelBlock, width = std::min(kChannelBlock, c - c0);
          for (int64_t k = 0; k < width; ++k) sum[k] = sum_log[k] = 0.0f;
          for (int64_t i = 0; i < hw; ++i) {
            to_f32(xt + (b * hw + i) * c + c0, row, width);
            for (int64_t k = 0; k < width; ++k) {
              const float xc = math::gem_clamp(row[k], eps);
              const float xp = math::pow_(xc, p);
              sum[k] += xp;
              sum_log[k] += xp * math::log_(xc);
            }
          }
          double part = 0.0;
          for (int64_t k = 0; k < width; ++k) {
            const float m = sum[k] / float(hw), ml = sum_log[k] / float(hw);
            const float gk = to_acc(g[b * c + c0 + k]);
            part += double(gk * math::gem_dy_dp(m, ml, p));
            coefficient[k] = gk * math::gem_input_coefficient(m, p, float(hw));
          }
          dp_parts[size_t(b * blocks + blk)] = part;
          for (int64_t i = 0; i < hw; ++i) {
            to_f32(xt + (b * hw + i) * c + c0, row, width);
            for (int64_t k = 0; k < width; ++k)
              row[k] = coefficient[k] * math::pow_(math::gem_clamp(row[k], eps), p - 1.0f) *
                       math::gem_clamp_grad_mask(row[k], eps);
            from_f32(row, out + (b * hw + i) * c + c0, width);
          }
        }
    }
    double total = 0.0;
    for (double part : dp_parts) total += part;
    *dp = float(total);
  });
}

}  // namespace sg::cpu
