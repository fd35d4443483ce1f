// Depthwise convolution (groups == Cin == Cout), NHWC, direct kernels.
//
// Every thread owns V consecutive channels (one 16-byte vector: 4 x f32 or 8 x f16/bf16, or a
// single channel when C is not a multiple of the vector) and a few output pixels. A block's
// filters sit in shared memory as floats, tap-major ([kh*kw][channels of the block]), so one
// tap's weights for a thread's V channels are one or two 16-byte shared loads.
//   forward:         x [N, H, W, C] * w [C, kh, kw, 1] (+ bias [C]) -> y [N, Ho, Wo, C]
//   backward input:  gather form, each dx pixel sums the dy pixels whose window covers it
//   backward weight: per-block partial sums over chunks of N*Ho*Wo, then a fixed-order sum
//                    over the chunks (deterministic, no atomics); dbias rides along as an
//                    extra "tap" whose input is 1.
#include <algorithm>

#include "kernels/cuda/conv2d_common.cuh"
#include "kernels/cuda/conv2d_internal.h"
#include "kernels/cuda_conv2d_scratch.h"

namespace sg::cuda::conv2d_detail {
namespace {

struct DwGeometry {
  int n, h, w, c, ho, wo, kh, kw, sh, sw, pt, pl;
};

DwGeometry dw_geometry(const Conv2dParams& p, const Conv2dShape& s) {
  return {int(s.n),        int(s.h),        int(s.w),        int(s.c_in),    int(s.out_h),   int(s.out_w),
          int(p.kernel_h), int(p.kernel_w), int(p.stride_h), int(p.stride_w), int(p.pad_top), int(p.pad_left)};
}

constexpr int kThreads = 256;
constexpr int kMaxWeightSmem = 48 * 1024;

// V weights of one tap for this thread's channels, from the block's shared-memory filters.
template <int V>
__device__ __forceinline__ void load_tap_weights(const float* w_tap, float (&wv)[V]) {
  if constexpr (V % 4 == 0) {
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      const float4 q = reinterpret_cast<const float4*>(w_tap)[i];
      wv[4 * i] = q.x;
      wv[4 * i + 1] = q.y;
      wv[4 * i + 2] = q.z;
      wv[4 * i + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) wv[i] = w_tap[i];
  }
}

// Copies the filters of this block's channels into shared memory as [taps][lanes * V] floats
// (zero for channels past C).
template <class T>
__device__ __forceinline__ void stage_weights(float* w_smem, const T* __restrict__ w, int taps, int c_first,
                                              int channels_per_block, int c_total) {
  const int tid = int(threadIdx.z * blockDim.y + threadIdx.y) * int(blockDim.x) + int(threadIdx.x);
  const int nthreads = int(blockDim.x * blockDim.y * blockDim.z);
  for (int i = tid; i < taps * channels_per_block; i += nthreads) {
    const int tap = i / channels_per_block;
    const int c = c_first + (i - tap * channels_per_block);
    w_smem[i] = c < c_total ? to_acc(w[int64_t(c) * taps + tap]) : 0.0f;
  }
}

// Block (lanes, 256 / lanes); grid (ceil(pixel groups / blockDim.y), ceil(C / V / lanes)).
// K, S > 0: a K x K kernel at stride S, each thread computes PX consecutive output pixels of a
// row and loads each input vector of a kernel row once for all of them. K == 0: any kernel
// and stride, one pixel per thread.
template <class T, int V, int K, int S>
__global__ void __launch_bounds__(kThreads)
    depthwise_forward_kernel(DwGeometry g, const T* __restrict__ x, const T* __restrict__ w,
                             const T* __restrict__ bias, T* __restrict__ y, int pixel_groups) {
  constexpr int PX = K == 0 ? 1 : (K >= 5 && S >= 2 ? 2 : 4);
  extern __shared__ __align__(16) float w_smem[];
  const int channels_per_block = int(blockDim.x) * V;
  const int c_first = int(blockIdx.y) * channels_per_block;
  const int taps = g.kh * g.kw;
  stage_weights(w_smem, w, taps, c_first, channels_per_block, g.c);
  __syncthreads();

  const int c0 = c_first + int(threadIdx.x) * V;
  const int pg = int(blockIdx.x) * int(blockDim.y) + int(threadIdx.y);
  if (c0 >= g.c || pg >= pixel_groups) return;
  const int groups_per_row = (g.wo + PX - 1) / PX;
  const int row = pg / groups_per_row;  // n * Ho + oy
  const int ox0 = (pg - row * groups_per_row) * PX;
  const int n = row / g.ho, oy = row - n * g.ho;
  const float* w_lane = w_smem + threadIdx.x * V;

  float acc[PX][V];
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const float b = bias ? to_acc(bias[c0 + v]) : 0.0f;
#pragma unroll
    for (int px = 0; px < PX; ++px) acc[px][v] = b;
  }
  const int iy0 = oy * g.sh - g.pt, ix0 = ox0 * g.sw - g.pl;
  const T* x_image = x + int64_t(n) * g.h * g.w * g.c + c0;

  if constexpr (K > 0) {
    constexpr int IN_W = (PX - 1) * S + K;  // input columns under PX windows
#pragma unroll
    for (int r = 0; r < K; ++r) {
      const int iy = iy0 + r;
      if (iy < 0 || iy >= g.h) continue;
      const T* x_row = x_image + int64_t(iy) * g.w * g.c;
      float in[IN_W][V];
#pragma unroll
      for (int j = 0; j < IN_W; ++j) {
        const int ix = ix0 + j;
        if (ix >= 0 && ix < g.w) {
          load_floats<T, V>(x_row + int64_t(ix) * g.c, in[j]);
        } else {
#pragma unroll
          for (int v = 0; v < V; ++v) in[j][v] = 0.0f;
        }
      }
#pragma unroll
      for (int s = 0; s < K; ++s) {
        float wv[V];
        load_tap_weights<V>(w_lane + (r * K + s) * channels_per_block, wv);
#pragma unroll
        for (int px = 0; px < PX; ++px)
#pragma unroll
          for (int v = 0; v < V; ++v) acc[px][v] = fmaf(in[px * S + s][v], wv[v], acc[px][v]);
      }
    }
  } else {
    for (int r = 0; r < g.kh; ++r) {
      const int iy = iy0 + r;
      if (iy < 0 || iy >= g.h) continue;
      const T* x_row = x_image + int64_t(iy) * g.w * g.c;
      for (int s = 0; s < g.kw; ++s) {
        const int ix = ix0 + s;
        if (ix < 0 || ix >= g.w) continue;
        float in[V], wv[V];
        load_floats<T, V>(x_row + int64_t(ix) * g.c, in);
        load_tap_weights<V>(w_lane + (r * g.kw + s) * channels_per_block, wv);
#pragma unroll
        for (int v = 0; v < V; ++v) acc[0][v] = fmaf(in[v], wv[v], acc[0][v]);
      }
    }
  }
#pragma unroll
  for (int px = 0; px < PX; ++px) {
    const int ox = ox0 + px;
    if (ox < g.wo) store_floats<T, V>(y + (int64_t(row) * g.wo + ox) * g.c + c0, acc[px]);
  }
}

// dx[n, iy, ix, c] = sum over taps (r, s) with iy + pt - r = oy * sh, ix + pl - s = ox * sw
// (0 <= oy < Ho, 0 <= ox < Wo) of dy[n, oy, ox, c] * w[c, r, s]. One dx pixel per thread.
// Block (lanes, 256 / lanes); grid (ceil(N*H*W / blockDim.y), ceil(C / V / lanes)).
template <class T, int V>
__global__ void __launch_bounds__(kThreads)
    depthwise_backward_input_kernel(DwGeometry g, const T* __restrict__ dy, const T* __restrict__ w,
                                    T* __restrict__ dx, int pixels) {
  extern __shared__ __align__(16) float w_smem[];
  const int channels_per_block = int(blockDim.x) * V;
  const int c_first = int(blockIdx.y) * channels_per_block;
  stage_weights(w_smem, w, g.kh * g.kw, c_first, channels_per_block, g.c);
  __syncthreads();

  const int c0 = c_first + int(threadIdx.x) * V;
  const int p = int(blockIdx.x) * int(blockDim.y) + int(threadIdx.y);
  if (c0 >= g.c || p >= pixels) return;
  const int row = p / g.w;  // n * H + iy
  const int ix = p - row * g.w;
  const int n = row / g.h, iy = row - n * g.h;
  const float* w_lane = w_smem + threadIdx.x * V;
  const T* dy_image = dy + int64_t(n) * g.ho * g.wo * g.c + c0;

  float acc[V];
#pragma unroll
  for (int v = 0; v < V; ++v) acc[v] = 0.0f;
  for (int r = 0; r < g.kh; ++r) {
    const int ty = iy + g.pt - r;
    if (ty < 0) break;  // ty only falls as r grows
    const int oy = ty / g.sh;
    if (oy * g.sh != ty || oy >= g.ho) continue;
    for (int s = 0; s < g.kw; ++s) {
      const int tx = ix + g.pl - s;
      if (tx < 0) break;
      const int ox = tx / g.sw;
      if (ox * g.sw != tx || ox >= g.wo) continue;
      float gv[V], wv[V];
      load_floats<T, V>(dy_image + (int64_t(oy) * g.wo + ox) * g.c, gv);
      load_tap_weights<V>(w_lane + (r * g.kw + s) * channels_per_block, wv);
#pragma unroll
      for (int v = 0; v < V; ++v) acc[v] = fmaf(gv[v], wv[v], acc[v]);
    }
  }
  store_floats<T, V>(dx + int64_t(p) * g.c + c0, acc);
}

// Pass 1 of dw: partial[chunk][t][c] = sum over the chunk's output pixels of dy * x at tap t
// (t < kh*kw), and of dy alone for t == kh*kw (dbias).
// Block (lanes, TY taps, PZ pixel lanes); grid (chunks, ceil(C / V / lanes)). Threads of one
// (channel, tap) that differ in z take every PZ-th pixel; their sums are added in z order.
template <class T, int V>
__global__ void __launch_bounds__(kThreads)
    depthwise_backward_weight_kernel(DwGeometry g, const T* __restrict__ x, const T* __restrict__ dy,
                                     float* __restrict__ partial, int pixels, int pixels_per_chunk) {
  extern __shared__ __align__(16) float red[];  // [PZ][TY][lanes][V]
  const int lanes = int(blockDim.x), ty_count = int(blockDim.y), pz = int(blockDim.z);
  const int taps = g.kh * g.kw, taps_plus = taps + 1;
  const int c0 = int(blockIdx.y) * lanes * V + int(threadIdx.x) * V;
  const bool active_channel = c0 < g.c;
  const int chunk = int(blockIdx.x);
  const int p_begin = chunk * pixels_per_chunk;
  const int p_end = min(pixels, p_begin + pixels_per_chunk);

  for (int t_base = 0; t_base < taps_plus; t_base += ty_count) {
    const int t = t_base + int(threadIdx.y);
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.0f;
    if (active_channel && t < taps_plus && p_begin + int(threadIdx.z) < p_end) {
      const bool is_bias = t == taps;
      const int r = is_bias ? 0 : t / g.kw, s = is_bias ? 0 : t - (t / g.kw) * g.kw;
      int p = p_begin + int(threadIdx.z);
      int row = p / g.wo;  // n * Ho + oy, then split once; later steps carry
      int ox = p - row * g.wo;
      int n = row / g.ho, oy = row - n * g.ho;
      for (; p < p_end; p += pz) {
        float gv[V];
        load_floats<T, V>(dy + int64_t(p) * g.c + c0, gv);
        if (is_bias) {
#pragma unroll
          for (int v = 0; v < V; ++v) acc[v] += gv[v];
        } else {
          const int iy = oy * g.sh - g.pt + r, ix = ox * g.sw - g.pl + s;
          if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
            float xv[V];
            load_floats<T, V>(x + ((int64_t(n) * g.h + iy) * g.w + ix) * g.c + c0, xv);
#pragma unroll
            for (int v = 0; v < V; ++v) acc[v] = fmaf(gv[v], xv[v], acc[v]);
          }
        }
        ox += pz;
        while (ox >= g.wo) {
          ox -= g.wo;
          if (++oy == g.ho) {
            oy = 0;
            ++n;
          }
        }
      }
    }
    float* mine = red + ((int(threadIdx.z) * ty_count + int(threadIdx.y)) * lanes + int(threadIdx.x)) * V;
#pragma unroll
    for (int v = 0; v < V; ++v) mine[v] = acc[v];
    __syncthreads();
    if (threadIdx.z == 0 && active_channel && t < taps_plus) {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        float sum = 0.0f;
        for (int z = 0; z < pz; ++z) sum += red[((z * ty_count + int(threadIdx.y)) * lanes + int(threadIdx.x)) * V + v];
        if (c0 + v < g.c) partial[(int64_t(chunk) * taps_plus + t) * g.c + c0 + v] = sum;
      }
    }
    __syncthreads();
  }
}

// Pass 2 writes column e = t * C + c of the chunk sums to dw[c, t] or dbias[c].
template <class T>
struct DepthwiseWeightOut {
  T* dw;
  T* dbias;
  int c_total, taps;
  __device__ void operator()(int, int e, float s) const {
    const int t = e / c_total, c = e - t * c_total;
    if (t < taps)
      dw[int64_t(c) * taps + t] = from_acc<T>(s);
    else if (dbias)
      dbias[c] = from_acc<T>(s);
  }
};

// Channel lanes per block: up to 32 vectors, fewer when the block's filters would not fit.
int lanes_for(int channel_vectors, int taps, int v) {
  const int by_smem = kMaxWeightSmem / (taps * v * int(sizeof(float)));
  return std::min({32, channel_vectors, by_smem});
}

template <class T, int V, int K, int S>
void launch_forward(const DwGeometry& g, int lanes, const T* x, const T* w, const T* bias, T* y,
                    StreamHandle stream) {
  constexpr int PX = K == 0 ? 1 : (K >= 5 && S >= 2 ? 2 : 4);
  const int channel_vectors = g.c / V;
  const int rows = kThreads / lanes;
  const int64_t pixel_groups = int64_t(g.n) * g.ho * ceil_div(g.wo, PX);
  SG_CHECK(pixel_groups < (int64_t(1) << 31), "conv2d_forward (CUDA depthwise): output too large");
  const dim3 grid(unsigned(ceil_div(pixel_groups, rows)), unsigned(ceil_div(channel_vectors, lanes)));
  const size_t smem = size_t(g.kh) * g.kw * lanes * V * sizeof(float);
  depthwise_forward_kernel<T, V, K, S><<<grid, dim3(lanes, rows), smem, stream>>>(g, x, w, bias, y, int(pixel_groups));
  SG_CUDA_CHECK_LAUNCH("conv2d_forward (CUDA depthwise)");
}

template <class T, int V>
void forward_vector_width(const DwGeometry& g, const T* x, const T* w, const T* bias, T* y, StreamHandle stream) {
  const int taps = g.kh * g.kw;
  const int lanes = lanes_for(g.c / V, taps, V);
  SG_CHECK(lanes >= 1, "conv2d_forward (CUDA depthwise): kernel ", g.kh, "x", g.kw, " too large for shared memory");
  const bool square = g.kh == g.kw && g.sh == g.sw;
  if constexpr (V > 1) {
    if (square && g.kh == 3 && g.sh == 1) return launch_forward<T, V, 3, 1>(g, lanes, x, w, bias, y, stream);
    if (square && g.kh == 3 && g.sh == 2) return launch_forward<T, V, 3, 2>(g, lanes, x, w, bias, y, stream);
    if (square && g.kh == 5 && g.sh == 1) return launch_forward<T, V, 5, 1>(g, lanes, x, w, bias, y, stream);
    if (square && g.kh == 5 && g.sh == 2) return launch_forward<T, V, 5, 2>(g, lanes, x, w, bias, y, stream);
  }
  launch_forward<T, V, 0, 0>(g, lanes, x, w, bias, y, stream);
}

// The vector path needs C a multiple of the vector and 16-byte aligned pointers; the filters
// must fit shared memory for at least one lane.
template <class T>
bool use_vectors(const DwGeometry& g, std::initializer_list<const void*> pointers) {
  if (g.c % kVec<T> != 0) return false;
  for (const void* ptr : pointers)
    if (!aligned16(ptr)) return false;
  return lanes_for(g.c / kVec<T>, g.kh * g.kw, kVec<T>) >= 1;
}

template <class T, int V>
void backward_input_vector_width(const DwGeometry& g, const T* dy, const T* w, T* dx, StreamHandle stream) {
  const int taps = g.kh * g.kw;
  const int lanes = lanes_for(g.c / V, taps, V);
  SG_CHECK(lanes >= 1, "conv2d_backward_input (CUDA depthwise): kernel ", g.kh, "x", g.kw,
           " too large for shared memory");
  const int rows = kThreads / lanes;
  const int64_t pixels = int64_t(g.n) * g.h * g.w;
  SG_CHECK(pixels < (int64_t(1) << 31), "conv2d_backward_input (CUDA depthwise): input too large");
  const dim3 grid(unsigned(ceil_div(pixels, rows)), unsigned(ceil_div(g.c / V, lanes)));
  const size_t smem = size_t(taps) * lanes * V * sizeof(float);
  depthwise_backward_input_kernel<T, V><<<grid, dim3(lanes, rows), smem, stream>>>(g, dy, w, dx, int(pixels));
  SG_CUDA_CHECK_LAUNCH("conv2d_backward_input (CUDA depthwise)");
}

template <class T, int V>
void backward_weight_vector_width(const DwGeometry& g, const T* x, const T* dy, T* dw, T* dbias,
                                  StreamHandle stream) {
  const int taps_plus = g.kh * g.kw + 1;
  const int64_t pixels = int64_t(g.n) * g.ho * g.wo;
  SG_CHECK(pixels < (int64_t(1) << 31), "conv2d_backward_weight (CUDA depthwise): output too large");
  // The block shape and the chunks of pixels depend on the shapes only, so the summation order (and
  // the bits) are the same on every run (kernels/cuda_conv2d_scratch.h; the memory plan counts with it).
  const DepthwiseWeightGradLayout layout = depthwise_weight_grad_layout(pixels, g.c, g.kh * g.kw, V, kThreads);
  const int lanes = layout.lanes, ty_count = layout.ty_count, pz = layout.pz, channel_blocks = layout.channel_blocks;
  const int64_t pixels_per_chunk = layout.pixels_per_chunk, used_chunks = layout.chunks;
  DeviceScratch partial(size_t(used_chunks) * taps_plus * g.c * sizeof(float), stream);
  const size_t smem = size_t(pz) * ty_count * lanes * V * sizeof(float);
  depthwise_backward_weight_kernel<T, V><<<dim3(unsigned(used_chunks), unsigned(channel_blocks)),
                                           dim3(lanes, ty_count, pz), smem, stream>>>(
      g, x, dy, partial.floats(), int(pixels), int(pixels_per_chunk));
  SG_CUDA_CHECK_LAUNCH("conv2d_backward_weight (CUDA depthwise)");
  column_sum(partial.floats(), used_chunks, taps_plus * g.c, DepthwiseWeightOut<T>{dw, dbias, g.c, g.kh * g.kw},
             stream, "conv2d_backward_weight (CUDA depthwise, reduction)");
}

}  // namespace

bool is_depthwise(const Conv2dParams& p, const Conv2dShape& s) {
  return p.groups > 1 && p.groups == s.c_in && s.c_out == s.c_in;
}

void depthwise_forward(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x, const void* w,
                       const void* bias, void* y, StreamHandle stream) {
  const DwGeometry g = dw_geometry(p, s);
  dispatch_floating(dtype, "conv2d_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* wt = static_cast<const T*>(w);
    const auto* bt = static_cast<const T*>(bias);
    auto* yt = static_cast<T*>(y);
    if (use_vectors<T>(g, {x, y}))
      forward_vector_width<T, kVec<T>>(g, xt, wt, bt, yt, stream);
    else
      forward_vector_width<T, 1>(g, xt, wt, bt, yt, stream);
  });
}

void depthwise_backward_input(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* dy,
                              const void* w, void* dx, StreamHandle stream) {
  const DwGeometry g = dw_geometry(p, s);
  dispatch_floating(dtype, "conv2d_backward_input", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* dyt = static_cast<const T*>(dy);
    const auto* wt = static_cast<const T*>(w);
    auto* dxt = static_cast<T*>(dx);
    if (use_vectors<T>(g, {dy, dx}))
      backward_input_vector_width<T, kVec<T>>(g, dyt, wt, dxt, stream);
    else
      backward_input_vector_width<T, 1>(g, dyt, wt, dxt, stream);
  });
}

void depthwise_backward_weight(const Conv2dParams& p, const Conv2dShape& s, DType dtype, const void* x,
                               const void* dy, void* dw, void* dbias, StreamHandle stream) {
  const DwGeometry g = dw_geometry(p, s);
  dispatch_floating(dtype, "conv2d_backward_weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* xt = static_cast<const T*>(x);
    const auto* dyt = static_cast<const T*>(dy);
    auto* dwt = static_cast<T*>(dw);
    auto* dbt = static_cast<T*>(dbias);
    if (g.c % kVec<T> == 0 && aligned16(x) && aligned16(dy))
      backward_weight_vector_width<T, kVec<T>>(g, xt, dyt, dwt, dbt, stream);
    else
      backward_weight_vector_width<T, 1>(g, xt, dyt, dwt, dbt, stream);
  });
}

}  // namespace sg::cuda::conv2d_detail
