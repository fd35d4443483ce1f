#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/tensor_ops.h"

namespace sg::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTileX = 32, kTileY = 8;

// ---- Elementwise: 16-byte vectors plus a scalar tail, grid-stride -------------------------------
// Op::apply(a, b) -> float. `b` may be null for unary ops (Op ignores it).

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct AxpyOp {  // a = x, b = y
  float alpha;
  __device__ float operator()(float a, float b) const { return fmaf(alpha, a, b); }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(float a, float) const { return alpha * a; }
};

template <class T, class Op, bool Binary>
__global__ void elementwise_kernel(const T* a, const T* b, T* y,  // y may alias a or b: no __restrict__
                                   int64_t n, bool vectorised,
                                   Op op) {
  constexpr int V = Vec16<T>::size;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t vectors = n / V;
    for (int64_t i = first; i < vectors; i += stride) {
      const Vec16<T> av = reinterpret_cast<const Vec16<T>*>(a)[i];
      Vec16<T> bv, out;
      if constexpr (Binary) bv = reinterpret_cast<const Vec16<T>*>(b)[i];
#pragma unroll
      for (int j = 0; j < V; ++j) out.v[j] = from_acc<T>(op(to_acc(av.v[j]), Binary ? to_acc(bv.v[j]) : 0.0f));
      reinterpret_cast<Vec16<T>*>(y)[i] = out;
    }
    done = vectors * V;
  }
  for (int64_t i = done + first; i < n; i += stride)
    y[i] = from_acc<T>(op(to_acc(a[i]), Binary ? to_acc(b[i]) : 0.0f));
}

template <class T>
__global__ void fill_kernel(T* y, T value, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

template <class Op, bool Binary>
void launch_elementwise(const char* name, DType dtype, const void* a, const void* b, void* y, int64_t n, Op op,
                        StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vectorised = all_aligned16({a, b, y});
    elementwise_kernel<T, Op, Binary><<<grid_for(n / Vec16<T>::size + 1, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), n, vectorised, op);
  });
  SG_CUDA_CHECK_LAUNCH(name);
}

// ---- Channel scale -------------------------------------------------------------------------------

template <class T, int VW>
__global__ void channel_scale_forward_kernel(const T* x, const T* __restrict__ s, T* y, int64_t n_batch, int64_t hw,
                                             int64_t c) {
  const int64_t packs = c / VW, total = n_batch * hw * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t cp = i % packs, n = i / (packs * hw);
    const Pack<T, VW> xv = load_pack<T, VW>(x + i * VW), sv = load_pack<T, VW>(s + n * c + cp * VW);
    Pack<T, VW> out;
#pragma unroll
    for (int j = 0; j < VW; ++j) out.v[j] = from_acc<T>(to_acc(xv.v[j]) * to_acc(sv.v[j]));
    store_pack<T, VW>(y + i * VW, out);
  }
}

// One block (32 packs x 8 rows) per (channel tile, sample): dx = dy * s as it streams, and
// ds folded per row in h*w order, then the 8 rows in order (deterministic, no atomics).
template <class T, int VW>
__global__ void channel_scale_backward_kernel(const T* __restrict__ x, const T* __restrict__ s,
                                              const T* __restrict__ dy, T* __restrict__ dx, T* __restrict__ ds,
                                              int64_t hw, int64_t c) {
  __shared__ float partial[kTileY][kTileX][VW];
  const int64_t packs = c / VW, cp = int64_t(blockIdx.x) * kTileX + threadIdx.x, n = blockIdx.y;
  float sum[VW];
#pragma unroll
  for (int j = 0; j < VW; ++j) sum[j] = 0.0f;
  if (cp < packs) {
    const Pack<T, VW> sv = load_pack<T, VW>(s + n * c + cp * VW);
    for (int64_t i = threadIdx.y; i < hw; i += kTileY) {
      const int64_t offset = (n * hw + i) * c + cp * VW;
      const Pack<T, VW> xv = load_pack<T, VW>(x + offset), gv = load_pack<T, VW>(dy + offset);
      Pack<T, VW> out;
#pragma unroll
      for (int j = 0; j < VW; ++j) {
        const float g = to_acc(gv.v[j]);
        sum[j] += g * to_acc(xv.v[j]);
        out.v[j] = from_acc<T>(g * to_acc(sv.v[j]));
      }
      store_pack<T, VW>(dx + offset, out);
    }
  }
#pragma unroll
  for (int j = 0; j < VW; ++j) partial[threadIdx.y][threadIdx.x][j] = sum[j];
  __syncthreads();
  if (threadIdx.y != 0 || cp >= packs) return;
  Pack<T, VW> out;
#pragma unroll
  for (int j = 0; j < VW; ++j) {
    float total = partial[0][threadIdx.x][j];
    for (int r = 1; r < kTileY; ++r) total += partial[r][threadIdx.x][j];
    out.v[j] = from_acc<T>(total);
  }
  store_pack<T, VW>(ds + n * c + cp * VW, out);
}

// ---- Column copies (concat / split) ----------------------------------------------------------------

template <class T, int VW>
__global__ void copy_columns_kernel(const T* __restrict__ src, int64_t src_stride, int64_t src_offset,
                                    T* __restrict__ dst, int64_t dst_stride, int64_t dst_offset, int64_t rows,
                                    int64_t width) {
  const int64_t packs = width / VW, total = rows * packs;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / packs, k = (i % packs) * VW;
    store_pack<T, VW>(dst + r * dst_stride + dst_offset + k, load_pack<T, VW>(src + r * src_stride + src_offset + k));
  }
}

}  // namespace

void channel_scale_forward(DType dtype, const void* x, const void* s, void* y, int64_t n, int64_t hw, int64_t c,
                           StreamHandle stream) {
  const int64_t total = n * hw * c;
  if (total == 0) return;
  dispatch_floating(dtype, "channel_scale_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = Vec16<T>::size;
    const T* xt = static_cast<const T*>(x);
    const T* st = static_cast<const T*>(s);
    T* yt = static_cast<T*>(y);
    if (c % V == 0 && all_aligned16({x, s, y}))
      channel_scale_forward_kernel<T, V><<<grid_for(total / V, kThreads), kThreads, 0, stream>>>(xt, st, yt, n, hw, c);
    else
      channel_scale_forward_kernel<T, 1><<<grid_for(total, kThreads), kThreads, 0, stream>>>(xt, st, yt, n, hw, c);
  });
  SG_CUDA_CHECK_LAUNCH("channel_scale_forward");
}

void channel_scale_backward(DType dtype, const void* x, const void* s, const void* dy, void* dx, void* ds, int64_t n,
                            int64_t hw, int64_t c, StreamHandle stream) {
  if (n * c == 0) return;
  SG_CHECK(n <= 65535, "channel_scale_backward: batch ", n, " exceeds the CUDA grid's 65535 samples per launch");
  dispatch_floating(dtype, "channel_scale_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = Vec16<T>::size;
    auto launch = [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      const dim3 grid(unsigned((c / VW + kTileX - 1) / kTileX), unsigned(n)), block(kTileX, kTileY);
      channel_scale_backward_kernel<T, VW><<<grid, block, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(s), static_cast<const T*>(dy), static_cast<T*>(dx),
          static_cast<T*>(ds), hw, c);
    };
    if (c % V == 0 && all_aligned16({x, s, dy, dx, ds}))
      launch(std::integral_constant<int, V>{});
    else
      launch(std::integral_constant<int, 1>{});
  });
  SG_CUDA_CHECK_LAUNCH("channel_scale_backward");
}

void add(DType dtype, const void* a, const void* b, void* y, int64_t count, StreamHandle stream) {
  launch_elementwise<AddOp, true>("add", dtype, a, b, y, count, AddOp{}, stream);
}

void axpy(DType dtype, float alpha, const void* x, void* y, int64_t count, StreamHandle stream) {
  launch_elementwise<AxpyOp, true>("axpy", dtype, x, y, y, count, AxpyOp{alpha}, stream);
}

void mul(DType dtype, const void* a, const void* b, void* y, int64_t count, StreamHandle stream) {
  launch_elementwise<MulOp, true>("mul", dtype, a, b, y, count, MulOp{}, stream);
}

void mul_backward(DType dtype, const void* a, const void* b, const void* dy, void* da, void* db, int64_t count,
                  StreamHandle stream) {
  launch_elementwise<MulOp, true>("mul_backward", dtype, dy, b, da, count, MulOp{}, stream);
  launch_elementwise<MulOp, true>("mul_backward", dtype, dy, a, db, count, MulOp{}, stream);
}

void fill(DType dtype, void* y, float value, int64_t count, StreamHandle stream) {
  if (count == 0) return;
  dispatch_floating(dtype, "fill_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T><<<grid_for(count, kThreads), kThreads, 0, stream>>>(static_cast<T*>(y), from_acc<T>(value), count);
  });
  SG_CUDA_CHECK_LAUNCH("fill_");
}

void scale(DType dtype, const void* x, float alpha, void* y, int64_t count, StreamHandle stream) {
  launch_elementwise<ScaleOp, false>("scale", dtype, x, nullptr, y, count, ScaleOp{alpha}, stream);
}

void copy_columns(DType dtype, const void* src, int64_t src_stride, int64_t src_offset, void* dst, int64_t dst_stride,
                  int64_t dst_offset, int64_t rows, int64_t width, StreamHandle stream) {
  if (rows * width == 0) return;
  dispatch_floating(dtype, "copy_columns", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = Vec16<T>::size;
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    // 16-byte packs when every row start and the width are whole packs.
    const bool vector = width % V == 0 && src_stride % V == 0 && dst_stride % V == 0 && src_offset % V == 0 &&
                        dst_offset % V == 0 && all_aligned16({src, dst});
    if (vector)
      copy_columns_kernel<T, V><<<grid_for(rows * width / V, kThreads), kThreads, 0, stream>>>(
          s, src_stride, src_offset, d, dst_stride, dst_offset, rows, width);
    else
      copy_columns_kernel<T, 1><<<grid_for(rows * width, kThreads), kThreads, 0, stream>>>(
          s, src_stride, src_offset, d, dst_stride, dst_offset, rows, width);
  });
  SG_CUDA_CHECK_LAUNCH("copy_columns");
}

}  // namespace sg::cuda
