#include "kernels/cpu/tensor_ops.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/float_convert.h"

namespace sg::cpu {
namespace {

constexpr int64_t kParallelMin = 32768;  // below this, threads cost more than they save
constexpr int64_t kChannelBlock = 128;

}  // namespace

void channel_scale_forward(DType dtype, const void* x, const void* s, void* y, int64_t n, int64_t hw, int64_t c) {
  dispatch_floating(dtype, "channel_scale_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xt = static_cast<const T*>(x);
    const T* st = static_cast<const T*>(s);
    T* yt = static_cast<T*>(y);
#pragma omp parallel if (n * hw * c >= kParallelMin)
    {
      std::vector<float> scales(static_cast<size_t>(c)), in_row(static_cast<size_t>(c)), out_row(static_cast<size_t>(c));
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < hw; ++i) {
          // float reads the gate in place; 16-bit converts its C values (cheap next to the row).
          const float* scale = f32_row(st + b * c, scales.data(), c);
          const int64_t row = (b * hw + i) * c;
          const float* in = f32_row(xt + row, in_row.data(), c);
          float* out = f32_out_row(yt + row, out_row.data());
#pragma omp simd
          for (int64_t k = 0; k < c; ++k) out[k] = in[k] * scale[k];
          store_f32_row(out, yt + row, c);
        }
    }
  });
}

void channel_scale_backward(DType dtype, const void* x, const void* s, const void* dy, void* dx, void* ds, int64_t n,
                            int64_t hw, int64_t c) {
  dispatch_floating(dtype, "channel_scale_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xt = static_cast<const T*>(x);
    const T* st = static_cast<const T*>(s);
    const T* gt = static_cast<const T*>(dy);
    T* dxt = static_cast<T*>(dx);
    T* dst = static_cast<T*>(ds);
    const int64_t blocks = (c + kChannelBlock - 1) / kChannelBlock;
    // One task per (sample, channel block): it writes dx for its block and folds ds over
    // h, w in order, so the sums do not depend on the thread count.
#pragma omp parallel if (n * hw * c >= kParallelMin)
    {
      float xs[kChannelBlock], gs[kChannelBlock], scales[kChannelBlock], sums[kChannelBlock];
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t c0 = blk * kChannelBlock, width = std::min(kChannelBlock, c - c0);
          // float reads x, dy and the gate in place (no copy per row); 16-bit converts them.
          const float* scale = f32_row(st + b * c + c0, scales, width);
          for (int64_t k = 0; k < width; ++k) sums[k] = 0.0f;
          for (int64_t i = 0; i < hw; ++i) {
            const int64_t row = (b * hw + i) * c + c0;
            const float* xr = f32_row(xt + row, xs, width);
            const float* gr = f32_row(gt + row, gs, width);
#pragma omp simd
            for (int64_t k = 0; k < width; ++k) {
              sums[k] += gr[k] * xr[k];
              dxt[row + k] = from_acc<T>(gr[k] * scale[k]);
            }
          }
          for (int64_t k = 0; k < width; ++k) dst[b * c + c0 + k] = from_acc<T>(sums[k]);
        }
    }
  });
}

void add(DType dtype, const void* a, const void* b, void* y, int64_t count) {
  dispatch_floating(dtype, "add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_f32(static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), count,
            [](float u, float v) { return u + v; });
  });
}

void axpy(DType dtype, float alpha, const void* x, void* y, int64_t count) {
  dispatch_floating(dtype, "axpy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* yt = static_cast<T*>(y);
    map_f32(static_cast<const T*>(x), static_cast<const T*>(yt), yt, count,
            [alpha](float u, float v) { return alpha * u + v; });
  });
}

void mul(DType dtype, const void* a, const void* b, void* y, int64_t count) {
  dispatch_floating(dtype, "mul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_f32(static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), count,
            [](float u, float v) { return u * v; });
  });
}

void mul_backward(DType dtype, const void* a, const void* b, const void* dy, void* da, void* db, int64_t count) {
  dispatch_floating(dtype, "mul_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gt = static_cast<const T*>(dy);
    const auto product = [](float u, float v) { return u * v; };
    // da and db alias none of the inputs (checked by the caller): two passes over dy.
    map_f32(gt, static_cast<const T*>(b), static_cast<T*>(da), count, product);
    map_f32(gt, static_cast<const T*>(a), static_cast<T*>(db), count, product);
  });
}

void fill(DType dtype, void* y, float value, int64_t count) {
  dispatch_floating(dtype, "fill_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = from_acc<T>(value);
    T* yt = static_cast<T*>(y);
#pragma omp parallel for simd schedule(static) if (count >= kParallelMin)
    for (int64_t i = 0; i < count; ++i) yt[i] = v;
  });
}

void scale(DType dtype, const void* x, float alpha, void* y, int64_t count) {
  dispatch_floating(dtype, "scale", [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_f32(static_cast<const T*>(x), static_cast<const T*>(nullptr), static_cast<T*>(y), count,
            [alpha](float u, float) { return alpha * u; });
  });
}

void copy_columns(DType dtype, const void* src, int64_t src_stride, int64_t src_offset, void* dst, int64_t dst_stride,
                  int64_t dst_offset, int64_t rows, int64_t width) {
  const size_t element = dtype_size(dtype);
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(d + size_t(r * dst_stride + dst_offset) * element, s + size_t(r * src_stride + src_offset) * element,
                size_t(width) * element);
}

}  // namespace sg::cpu
