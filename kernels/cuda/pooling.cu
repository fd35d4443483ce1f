#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/pooling.h"
#include "kernels/pooling_math.h"

namespace sg::cuda {
namespace {

constexpr int kThreads = 256;

// The output rows [first, last] whose windows cover input row i.
__device__ __forceinline__ void covering_windows(int64_t i, int64_t k, int64_t s, int64_t pad_before,
                                                 int64_t out_extent, int64_t& first, int64_t& last) {
  const int64_t lo = i + pad_before - k + 1;
  first = lo <= 0 ? 0 : (lo + s - 1) / s;
  last = min((i + pad_before) / s, out_extent - 1);
}

// ---- 2-D max / average pooling: one thread per (n, oh, ow, channel pack) -----------------------

template <class T, int VW>
__global__ void max_pool2d_forward_kernel(Pool2dParams p, Pool2dShape s, const T* __restrict__ x, T* __restrict__ y,
                                          int32_t* __restrict__ argmax) {
  const int64_t packs = s.c / VW, total = s.n * s.out_h * s.out_w * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, ow = (i / packs) % s.out_w, oh = (i / (packs * s.out_w)) % s.out_h;
    const int64_t n = i / (packs * s.out_w * s.out_h);
    const int64_t h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
    const int64_t ih0 = max(h0, int64_t(0)), ih1 = min(h0 + p.kernel_h, s.h);
    const int64_t iw0 = max(w0, int64_t(0)), iw1 = min(w0 + p.kernel_w, s.w);
    float best[VW];
    int32_t index[VW];
    // The first real cell starts the scan (padding never wins); then scan order, strict >.
    {
      const Pack<T, VW> v = load_pack<T, VW>(x + ((n * s.h + ih0) * s.w + iw0) * s.c + cp * VW);
#pragma unroll
      for (int j = 0; j < VW; ++j) {
        best[j] = to_acc(v.v[j]);
        index[j] = int32_t(ih0 * s.w + iw0);
      }
    }
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = (ih == ih0 ? iw0 + 1 : iw0); iw < iw1; ++iw) {
        const Pack<T, VW> v = load_pack<T, VW>(x + ((n * s.h + ih) * s.w + iw) * s.c + cp * VW);
#pragma unroll
        for (int j = 0; j < VW; ++j) {
          const float value = to_acc(v.v[j]);
          if (math::max_pool_takes(value, best[j])) {
            best[j] = value;
            index[j] = int32_t(ih * s.w + iw);
          }
        }
      }
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) out.v[j] = from_acc<T>(best[j]);
    store_pack<T, VW>(y + i * VW, out);
    if (argmax) {
#pragma unroll
      for (int j = 0; j < VW; ++j) argmax[i * VW + j] = index[j];
    }
  }
}

// Gather form (deterministic, no atomics): one thread per (n, ih, iw, channel pack) sums the dy
// of the windows whose argmax it is, in window order.
template <class T, int VW>
__global__ void max_pool2d_backward_kernel(Pool2dParams p, Pool2dShape s, const int32_t* __restrict__ argmax,
                                           const T* __restrict__ dy, T* __restrict__ dx) {
  const int64_t packs = s.c / VW, total = s.n * s.h * s.w * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, iw = (i / packs) % s.w, ih = (i / (packs * s.w)) % s.h;
    const int64_t n = i / (packs * s.w * s.h);
    int64_t oh0, oh1, ow0, ow1;
    covering_windows(ih, p.kernel_h, p.stride_h, p.pad_top, s.out_h, oh0, oh1);
    covering_windows(iw, p.kernel_w, p.stride_w, p.pad_left, s.out_w, ow0, ow1);
    const int32_t here = int32_t(ih * s.w + iw);
    float sum[VW];
#pragma unroll
    for (int j = 0; j < VW; ++j) sum[j] = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = ((n * s.out_h + oh) * s.out_w + ow) * s.c + cp * VW;
        const Pack<T, VW> g = load_pack<T, VW>(dy + o);
#pragma unroll
        for (int j = 0; j < VW; ++j) sum[j] += argmax[o + j] == here ? to_acc(g.v[j]) : 0.0f;
      }
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) out.v[j] = from_acc<T>(sum[j]);
    store_pack<T, VW>(dx + i * VW, out);
  }
}

template <class T, int VW>
__global__ void avg_pool2d_forward_kernel(Pool2dParams p, Pool2dShape s, const T* __restrict__ x, T* __restrict__ y) {
  const int64_t packs = s.c / VW, total = s.n * s.out_h * s.out_w * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, ow = (i / packs) % s.out_w, oh = (i / (packs * s.out_w)) % s.out_h;
    const int64_t n = i / (packs * s.out_w * s.out_h);
    const int64_t h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
    const int64_t ih0 = max(h0, int64_t(0)), ih1 = min(h0 + p.kernel_h, s.h);
    const int64_t iw0 = max(w0, int64_t(0)), iw1 = min(w0 + p.kernel_w, s.w);
    const float divisor = float(math::avg_pool_divisor(h0, w0, p.kernel_h, p.kernel_w, s.h, s.w, p.pad_bottom,
                                                       p.pad_right, p.count_include_pad));
    float sum[VW];
#pragma unroll
    for (int j = 0; j < VW; ++j) sum[j] = 0.0f;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = iw0; iw < iw1; ++iw) {
        const Pack<T, VW> v = load_pack<T, VW>(x + ((n * s.h + ih) * s.w + iw) * s.c + cp * VW);
#pragma unroll
        for (int j = 0; j < VW; ++j) sum[j] += to_acc(v.v[j]);
      }
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) out.v[j] = from_acc<T>(sum[j] / divisor);
    store_pack<T, VW>(y + i * VW, out);
  }
}

template <class T, int VW>
__global__ void avg_pool2d_backward_kernel(Pool2dParams p, Pool2dShape s, const T* __restrict__ dy,
                                           T* __restrict__ dx) {
  const int64_t packs = s.c / VW, total = s.n * s.h * s.w * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, iw = (i / packs) % s.w, ih = (i / (packs * s.w)) % s.h;
    const int64_t n = i / (packs * s.w * s.h);
    int64_t oh0, oh1, ow0, ow1;
    covering_windows(ih, p.kernel_h, p.stride_h, p.pad_top, s.out_h, oh0, oh1);
    covering_windows(iw, p.kernel_w, p.stride_w, p.pad_left, s.out_w, ow0, ow1);
    float sum[VW];
#pragma unroll
    for (int j = 0; j < VW; ++j) sum[j] = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const float divisor =
            float(math::avg_pool_divisor(oh * p.stride_h - p.pad_top, ow * p.stride_w - p.pad_left, p.kernel_h,
                                         p.kernel_w, s.h, s.w, p.pad_bottom, p.pad_right, p.count_include_pad));
        const Pack<T, VW> g = load_pack<T, VW>(dy + ((n * s.out_h + oh) * s.out_w + ow) * s.c + cp * VW);
#pragma unroll
        for (int j = 0; j < VW; ++j) sum[j] += to_acc(g.v[j]) / divisor;
      }
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) out.v[j] = from_acc<T>(sum[j]);
    store_pack<T, VW>(dx + i * VW, out);
  }
}

// ---- Global pools: block (32 packs, 8 rows) per (channel tile, sample) ---------------------------
// Row ty folds h*w = ty, ty + 8, ... in order; thread ty == 0 then folds the 8 rows in order:
// a fixed reduction order, so results are deterministic.

constexpr int kTileX = 32, kTileY = 8;
enum class GlobalMode { avg, max, gem };

// (v, i) beats (best, best_i): larger, NaN over a number, else the smaller index.
__device__ __forceinline__ bool beats(float v, int32_t i, float best, int32_t best_i) {
  if (math::max_pool_takes(v, best)) return true;
  if (math::max_pool_takes(best, v)) return false;
  return i < best_i;
}

template <class T, int VW, GlobalMode M>
__global__ void global_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int32_t* __restrict__ argmax,
                                           const float* __restrict__ p_ptr, int64_t hw, int64_t c, float eps) {
  __shared__ float partial[kTileY][kTileX][VW];
  __shared__ int32_t partial_index[kTileY][M == GlobalMode::max ? kTileX : 1][VW];
  const int64_t packs = c / VW, cp = int64_t(blockIdx.x) * kTileX + threadIdx.x, n = blockIdx.y;
  const float p = M == GlobalMode::gem ? *p_ptr : 1.0f;
  float acc[VW];
  int32_t index[VW];
#pragma unroll
  for (int j = 0; j < VW; ++j) {
    acc[j] = 0.0f;
    index[j] = -1;  // -1: this row saw nothing (max only)
  }
  if (cp < packs) {
    for (int64_t i = threadIdx.y; i < hw; i += kTileY) {
      const Pack<T, VW> v = load_pack<T, VW>(x + (n * hw + i) * c + cp * VW);
#pragma unroll
      for (int j = 0; j < VW; ++j) {
        const float value = to_acc(v.v[j]);
        if constexpr (M == GlobalMode::avg) {
          acc[j] += value;
        } else if constexpr (M == GlobalMode::gem) {
          acc[j] += math::pow_(math::gem_clamp(value, eps), p);
        } else {
          if (index[j] < 0 || math::max_pool_takes(value, acc[j])) {
            acc[j] = value;
            index[j] = int32_t(i);
          }
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < VW; ++j) {
    partial[threadIdx.y][threadIdx.x][j] = acc[j];
    if constexpr (M == GlobalMode::max) partial_index[threadIdx.y][threadIdx.x][j] = index[j];
  }
  __syncthreads();
  if (threadIdx.y != 0 || cp >= packs) return;
  Pack<T, VW> out;
#pragma unroll
  for (int j = 0; j < VW; ++j) {
    float total = partial[0][threadIdx.x][j];
    if constexpr (M == GlobalMode::max) {
      int32_t best_i = partial_index[0][threadIdx.x][j];
      for (int r = 1; r < kTileY; ++r) {
        const int32_t ri = partial_index[r][threadIdx.x][j];
        if (ri >= 0 && beats(partial[r][threadIdx.x][j], ri, total, best_i)) {
          total = partial[r][threadIdx.x][j];
          best_i = ri;
        }
      }
      if (argmax) argmax[n * c + cp * VW + j] = best_i;
      out.v[j] = from_acc<T>(total);
    } else {
      for (int r = 1; r < kTileY; ++r) total += partial[r][threadIdx.x][j];
      const float mean = total / float(hw);
      out.v[j] = from_acc<T>(M == GlobalMode::gem ? math::gem_output(mean, p) : mean);
    }
  }
  store_pack<T, VW>(y + n * c + cp * VW, out);
}

// GeM backward, fused per (channel tile, sample): pass 1 folds m = mean(xc^p) and
// ml = mean(xc^p log xc); then the coefficients go to shared memory and the per-(n, c) dy/dp
// terms to `dp_terms`; pass 2 writes dx.
template <class T, int VW>
__global__ void gem_pool_backward_kernel(const T* __restrict__ x, const float* __restrict__ p_ptr,
                                         const T* __restrict__ dy, T* __restrict__ dx, float* __restrict__ dp_terms,
                                         int64_t hw, int64_t c, float eps) {
  __shared__ float partial[kTileY][kTileX][VW];
  __shared__ float partial_log[kTileY][kTileX][VW];
  __shared__ float coefficient[kTileX][VW];
  const int64_t packs = c / VW, cp = int64_t(blockIdx.x) * kTileX + threadIdx.x, n = blockIdx.y;
  const float p = *p_ptr;
  float sum[VW], sum_log[VW];
#pragma unroll
  for (int j = 0; j < VW; ++j) sum[j] = sum_log[j] = 0.0f;
  if (cp < packs) {
    for (int64_t i = threadIdx.y; i < hw; i += kTileY) {
      const Pack<T, VW> v = load_pack<T, VW>(x + (n * hw + i) * c + cp * VW);
#pragma unroll
      for (int j = 0; j < VW; ++j) {
        const float xc = math::gem_clamp(to_acc(v.v[j]), eps);
        const float xp = math::pow_(xc, p);
        sum[j] += xp;
        sum_log[j] += xp * math::log_(xc);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < VW; ++j) {
    partial[threadIdx.y][threadIdx.x][j] = sum[j];
    partial_log[threadIdx.y][threadIdx.x][j] = sum_log[j];
  }
  __syncthreads();
  if (threadIdx.y == 0 && cp < packs) {
    const Pack<T, VW> g = load_pack<T, VW>(dy + n * c + cp * VW);
#pragma unroll
    for (int j = 0; j < VW; ++j) {
      float total = partial[0][threadIdx.x][j], total_log = partial_log[0][threadIdx.x][j];
      for (int r = 1; r < kTileY; ++r) {
        total += partial[r][threadIdx.x][j];
        total_log += partial_log[r][threadIdx.x][j];
      }
      const float m = total / float(hw), ml = total_log / float(hw), gj = to_acc(g.v[j]);
      dp_terms[n * c + cp * VW + j] = gj * math::gem_dy_dp(m, ml, p);
      coefficient[threadIdx.x][j] = gj * math::gem_input_coefficient(m, p, float(hw));
    }
  }
  __syncthreads();
  if (cp >= packs) return;
  for (int64_t i = threadIdx.y; i < hw; i += kTileY) {
    const Pack<T, VW> v = load_pack<T, VW>(x + (n * hw + i) * c + cp * VW);
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) {
      const float value = to_acc(v.v[j]);
      out.v[j] = from_acc<T>(coefficient[threadIdx.x][j] * math::pow_(math::gem_clamp(value, eps), p - 1.0f) *
                             math::gem_clamp_grad_mask(value, eps));
    }
    store_pack<T, VW>(dx + (n * hw + i) * c + cp * VW, out);
  }
}

// One block sums `count` floats in a fixed order (strided per thread, then a fixed tree).
__global__ void sum_fixed_order_kernel(const float* __restrict__ values, int64_t count, float* __restrict__ out) {
  __shared__ float partial[kThreads];
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) s += values[i];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = partial[0];
}

// Global backward: one thread per (n, hw, channel pack) of dx.
template <class T, int VW, bool Max>
__global__ void global_pool_backward_kernel(const int32_t* __restrict__ argmax, const T* __restrict__ dy,
                                            T* __restrict__ dx, int64_t n_batch, int64_t hw, int64_t c) {
  const int64_t packs = c / VW, total = n_batch * hw * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, h = (i / packs) % hw, n = i / (packs * hw);
    const Pack<T, VW> g = load_pack<T, VW>(dy + n * c + cp * VW);
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) {
      if constexpr (Max) {
        out.v[j] = argmax[n * c + cp * VW + j] == h ? g.v[j] : from_acc<T>(0.0f);
      } else {
        out.v[j] = from_acc<T>(to_acc(g.v[j]) / float(hw));
      }
    }
    store_pack<T, VW>(dx + i * VW, out);
  }
}

template <class T, int VW, GlobalMode M>
void launch_global_forward(const void* x, void* y, int32_t* argmax, const float* p, int64_t n, int64_t hw, int64_t c,
                           float eps, StreamHandle stream) {
  const int64_t packs = c / VW;
  const dim3 grid(unsigned((packs + kTileX - 1) / kTileX), unsigned(n)), block(kTileX, kTileY);
  global_pool_forward_kernel<T, VW, M><<<grid, block, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                                    argmax, p, hw, c, eps);
}

void check_grid_y(const char* op, int64_t n) {
  SG_CHECK(n <= 65535, op, ": batch ", n, " exceeds the CUDA grid's 65535 samples per launch");
}

}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        int32_t* argmax, StreamHandle stream) {
  const int64_t total = s.n * s.out_h * s.out_w * s.c;
  if (total == 0) return;
  dispatch_floating(dtype, "max_pool2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(s.c, {x, y}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      max_pool2d_forward_kernel<T, VW><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          p, s, static_cast<const T*>(x), static_cast<T*>(y), argmax);
    });
  });
  SG_CUDA_CHECK_LAUNCH("max_pool2d_forward");
}

void max_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const int32_t* argmax,
                         const void* dy, void* dx, StreamHandle stream) {
  const int64_t total = s.n * s.h * s.w * s.c;
  if (total == 0) return;
  dispatch_floating(dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(s.c, {dy, dx}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      max_pool2d_backward_kernel<T, VW><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          p, s, argmax, static_cast<const T*>(dy), static_cast<T*>(dx));
    });
  });
  SG_CUDA_CHECK_LAUNCH("max_pool2d_backward");
}

void avg_pool2d_forward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* x, void* y,
                        StreamHandle stream) {
  const int64_t total = s.n * s.out_h * s.out_w * s.c;
  if (total == 0) return;
  dispatch_floating(dtype, "avg_pool2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(s.c, {x, y}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      avg_pool2d_forward_kernel<T, VW><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          p, s, static_cast<const T*>(x), static_cast<T*>(y));
    });
  });
  SG_CUDA_CHECK_LAUNCH("avg_pool2d_forward");
}

void avg_pool2d_backward(const Pool2dParams& p, const Pool2dShape& s, DType dtype, const void* dy, void* dx,
                         StreamHandle stream) {
  const int64_t total = s.n * s.h * s.w * s.c;
  if (total == 0) return;
  dispatch_floating(dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(s.c, {dy, dx}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      avg_pool2d_backward_kernel<T, VW><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          p, s, static_cast<const T*>(dy), static_cast<T*>(dx));
    });
  });
  SG_CUDA_CHECK_LAUNCH("avg_pool2d_backward");
}

void global_avg_pool_forward(DType dtype, const void* x, void* y, int64_t n, int64_t hw, int64_t c,
                             StreamHandle stream) {
  if (n * c == 0) return;
  check_grid_y("global_avg_pool_forward", n);
  dispatch_floating(dtype, "global_avg_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {x, y}, [&](auto vw) {
      launch_global_forward<T, decltype(vw)::value, GlobalMode::avg>(x, y, nullptr, nullptr, n, hw, c, 0.0f, stream);
    });
  });
  SG_CUDA_CHECK_LAUNCH("global_avg_pool_forward");
}

void global_avg_pool_backward(DType dtype, const void* dy, void* dx, int64_t n, int64_t hw, int64_t c,
                              StreamHandle stream) {
  const int64_t total = n * hw * c;
  if (total == 0) return;
  dispatch_floating(dtype, "global_avg_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {dy, dx}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      global_pool_backward_kernel<T, VW, false><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          nullptr, static_cast<const T*>(dy), static_cast<T*>(dx), n, hw, c);
    });
  });
  SG_CUDA_CHECK_LAUNCH("global_avg_pool_backward");
}

void global_max_pool_forward(DType dtype, const void* x, void* y, int32_t* argmax, int64_t n, int64_t hw, int64_t c,
                             StreamHandle stream) {
  if (n * c == 0) return;
  check_grid_y("global_max_pool_forward", n);
  dispatch_floating(dtype, "global_max_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {x, y}, [&](auto vw) {
      launch_global_forward<T, decltype(vw)::value, GlobalMode::max>(x, y, argmax, nullptr, n, hw, c, 0.0f, stream);
    });
  });
  SG_CUDA_CHECK_LAUNCH("global_max_pool_forward");
}

void global_max_pool_backward(DType dtype, const int32_t* argmax, const void* dy, void* dx, int64_t n, int64_t hw,
                              int64_t c, StreamHandle stream) {
  const int64_t total = n * hw * c;
  if (total == 0) return;
  dispatch_floating(dtype, "global_max_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {dy, dx}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      global_pool_backward_kernel<T, VW, true><<<grid_for(total / VW, kThreads), kThreads, 0, stream>>>(
          argmax, static_cast<const T*>(dy), static_cast<T*>(dx), n, hw, c);
    });
  });
  SG_CUDA_CHECK_LAUNCH("global_max_pool_backward");
}

void gem_pool_forward(DType dtype, const void* x, const float* p, void* y, int64_t n, int64_t hw, int64_t c, float eps,
                      StreamHandle stream) {
  if (n * c == 0) return;
  check_grid_y("gem_pool_forward", n);
  dispatch_floating(dtype, "gem_pool_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {x, y}, [&](auto vw) {
      launch_global_forward<T, decltype(vw)::value, GlobalMode::gem>(x, y, nullptr, p, n, hw, c, eps, stream);
    });
  });
  SG_CUDA_CHECK_LAUNCH("gem_pool_forward");
}

void gem_pool_backward(DType dtype, const void* x, const float* p, const void* dy, void* dx, float* dp,
                       float* workspace, int64_t n, int64_t hw, int64_t c, float eps, StreamHandle stream) {
  if (n * c == 0) {
    SG_CUDA_CHECK(cudaMemsetAsync(dp, 0, sizeof(float), stream));
    return;
  }
  check_grid_y("gem_pool_backward", n);
  dispatch_floating(dtype, "gem_pool_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_pack_width<T>(c, {x, dy, dx}, [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      const int64_t packs = c / VW;
      const dim3 grid(unsigned((packs + kTileX - 1) / kTileX), unsigned(n)), block(kTileX, kTileY);
      gem_pool_backward_kernel<T, VW><<<grid, block, 0, stream>>>(static_cast<const T*>(x), p,
                                                                  static_cast<const T*>(dy), static_cast<T*>(dx),
                                                                  workspace, hw, c, eps);
    });
  });
  SG_CUDA_CHECK_LAUNCH("gem_pool_backward");
  sum_fixed_order_kernel<<<1, kThreads, 0, stream>>>(workspace, n * c, dp);
  SG_CUDA_CHECK_LAUNCH("gem_pool_backward (dp sum)");
}

}  // namespace sg::cuda
