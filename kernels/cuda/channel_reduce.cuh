#pragma once
// Per-channel reductions over [M, C] rows (NHWC flattened) and per-channel elementwise
// passes, shared by batch norm and bias + activation.
//
// A reduction runs in two deterministic passes (no atomics): each block sums a fixed set of
// rows for a slice of channels into partial sums [row_blocks, C]; a finalize kernel adds the
// partials in order. The layout depends only on (M, C, vector width), never on the GPU, so
// results are reproducible. Channels are contiguous: each thread owns VC adjacent channels
// (a 16-byte vector when C allows it) and the block's threads split into `lanes` channel
// groups times `rows_per_step` rows.
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "core/half.h"
#include "core/hd.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_channel_reduce_layout.h"
#include "kernels/scalar_math.h"

namespace sg::cuda {

// The split and its scratch: kernels/cuda_channel_reduce_layout.h (shared with the memory plan).
constexpr int kReduceThreads = kChannelReduceThreads;

// 16 / sizeof(T) channels per thread when every row starts 16-byte aligned, else 1.
template <class T>
inline bool channels_vectorisable(int64_t C, std::initializer_list<const void*> pointers) {
  static_assert(Vec16<T>::size * sizeof(T) == 16, "a 16-byte vector");
  return channel_vector_width(C, sizeof(T), all_aligned16(pointers)) > 1;
}

// Op: struct Context; Context context(int64_t c0) const;
//     void accumulate(const Context&, int64_t m, int64_t c0, float (&a)[VC], float (&b)[VC]) const;
// Writes partial_a/partial_b [gridDim.x, C].
template <int VC, class Op>
__global__ void __launch_bounds__(kReduceThreads)
    channel_partial_sums_kernel(Op op, int64_t M, int64_t C, int lanes, int rows_per_step, float* __restrict__ partial_a,
                                float* __restrict__ partial_b) {
  __shared__ float shared_a[kReduceThreads * VC];
  __shared__ float shared_b[kReduceThreads * VC];
  const int lane = int(threadIdx.x) % lanes;
  const int row_in_step = int(threadIdx.x) / lanes;
  const int64_t c0 = (int64_t(blockIdx.y) * lanes + lane) * VC;
  float a[VC], b[VC];
#pragma unroll
  for (int j = 0; j < VC; ++j) a[j] = b[j] = 0.0f;
  const bool active = row_in_step < rows_per_step && c0 < C;
  if (active) {
    const typename Op::Context ctx = op.context(c0);
    const int64_t step = int64_t(gridDim.x) * rows_per_step;
    for (int64_t m = int64_t(blockIdx.x) * rows_per_step + row_in_step; m < M; m += step)
      op.accumulate(ctx, m, c0, a, b);
  }
#pragma unroll
  for (int j = 0; j < VC; ++j) {
    shared_a[threadIdx.x * VC + j] = a[j];
    shared_b[threadIdx.x * VC + j] = b[j];
  }
  __syncthreads();
  if (row_in_step == 0 && c0 < C) {
    for (int r = 1; r < rows_per_step; ++r) {
#pragma unroll
      for (int j = 0; j < VC; ++j) {
        a[j] += shared_a[(r * lanes + lane) * VC + j];
        b[j] += shared_b[(r * lanes + lane) * VC + j];
      }
    }
#pragma unroll
    for (int j = 0; j < VC; ++j) {
      partial_a[int64_t(blockIdx.x) * C + c0 + j] = a[j];
      partial_b[int64_t(blockIdx.x) * C + c0 + j] = b[j];
    }
  }
}

// How many rows of [0, M) the partial kernels give to one thread row and to one block: thread row
// r of block b reads m = b * rows_per_step + r + k * step (k = 0, 1, ...), step = row_blocks *
// rows_per_step. `first` is b * rows_per_step + r. Computed, not stored: the merges need them.
SG_HD_INLINE int64_t rows_of_thread(int64_t first, int64_t step, int64_t M) {
  return first < M ? (M - 1 - first) / step + 1 : 0;
}
SG_HD_INLINE int64_t rows_of_block(int64_t block, int rows_per_step, int64_t step, int64_t M) {
  // Full sweeps give each block rows_per_step rows; the last, partial sweep covers the residues
  // [0, M % step), of which this block owns [block * rows_per_step, (block + 1) * rows_per_step).
  const int64_t tail = M % step - block * rows_per_step;
  return (M / step) * rows_per_step + (tail < 0 ? 0 : (tail > rows_per_step ? rows_per_step : tail));
}

// Per-channel moments of x [M, C] (batch norm's statistics): each thread runs Welford's update over
// its rows (kernels/scalar_math.h), then one thread per channel group merges the block's thread
// rows in order with Chan's formula and writes the block's partial mean and M2 [gridDim.x, C];
// counts follow from the layout (rows_of_block). Values are shifted by row 0 first (exact for
// values within a factor 2 of it), so the float running means hold mean - x0, whose rounding is
// far smaller than the mean's when |mean| >> std; the partial means are of x - x0. The same grid,
// block size and shared memory (2 * kReduceThreads * VC floats: 16 KiB at VC = 8) as
// channel_partial_sums_kernel, and no atomics: the same inputs give the same bits.
template <class T, int VC>
__global__ void __launch_bounds__(kReduceThreads)
    channel_partial_moments_kernel(const T* __restrict__ x, int64_t M, int64_t C, int lanes, int rows_per_step,
                                   float* __restrict__ partial_mean, float* __restrict__ partial_m2) {
  __shared__ float shared_mean[kReduceThreads * VC];
  __shared__ float shared_m2[kReduceThreads * VC];
  const int lane = int(threadIdx.x) % lanes;
  const int row_in_step = int(threadIdx.x) / lanes;
  const int64_t c0 = (int64_t(blockIdx.y) * lanes + lane) * VC;
  const int64_t step = int64_t(gridDim.x) * rows_per_step;
  const int64_t first = int64_t(blockIdx.x) * rows_per_step + row_in_step;
  float mean[VC], m2[VC];
#pragma unroll
  for (int j = 0; j < VC; ++j) mean[j] = m2[j] = 0.0f;
  if (row_in_step < rows_per_step && c0 < C) {
    float shift[VC];
    load_floats<T, VC>(x + c0, shift);
    float n = 0.0f;
    for (int64_t m = first; m < M; m += step) {
      float v[VC];
      load_floats<T, VC>(x + m * C + c0, v);
      n += 1.0f;
      const float inv_n = 1.0f / n;
#pragma unroll
      for (int j = 0; j < VC; ++j) math::welford_add(v[j] - shift[j], inv_n, mean[j], m2[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < VC; ++j) {
    shared_mean[threadIdx.x * VC + j] = mean[j];
    shared_m2[threadIdx.x * VC + j] = m2[j];
  }
  __syncthreads();
  if (row_in_step == 0 && c0 < C) {
    float n = float(rows_of_thread(first, step, M));
    for (int r = 1; r < rows_per_step; ++r) {
      const float nr = float(rows_of_thread(first + r, step, M));
#pragma unroll
      for (int j = 0; j < VC; ++j)
        math::chan_merge(n, nr, mean[j], m2[j], shared_mean[(r * lanes + lane) * VC + j],
                         shared_m2[(r * lanes + lane) * VC + j]);
      n += nr;
    }
#pragma unroll
    for (int j = 0; j < VC; ++j) {
      partial_mean[int64_t(blockIdx.x) * C + c0 + j] = mean[j];
      partial_m2[int64_t(blockIdx.x) * C + c0 + j] = m2[j];
    }
  }
}

template <class T, int VC>
void launch_channel_partial_moments(const T* x, int64_t M, int64_t C, const ChannelLayout& L, float* partial_mean,
                                    float* partial_m2, cudaStream_t stream) {
  const dim3 grid(L.row_blocks, L.channel_blocks);
  channel_partial_moments_kernel<T, VC><<<grid, kReduceThreads, 0, stream>>>(x, M, C, L.lanes, L.rows_per_step,
                                                                             partial_mean, partial_m2);
}

// Merges the partial moments of channel c in row-block order, in double: count (= M), mean (of
// x - x0, as the partials), M2.
__device__ __forceinline__ void merge_partial_moments(const float* partial_mean, const float* partial_m2,
                                                      unsigned row_blocks, int rows_per_step, int64_t M, int64_t C,
                                                      int64_t c, double& mean, double& m2) {
  const int64_t step = int64_t(row_blocks) * rows_per_step;
  double n = 0;
  mean = 0;
  m2 = 0;
  for (unsigned r = 0; r < row_blocks; ++r) {
    const double nb = double(rows_of_block(r, rows_per_step, step, M));
    math::chan_merge(n, nb, mean, m2, double(partial_mean[int64_t(r) * C + c]), double(partial_m2[int64_t(r) * C + c]));
    n += nb;
  }
}

// Sums the partials of channel c in row-block order (double, so the order is the only choice).
__device__ __forceinline__ void sum_partials(const float* partial_a, const float* partial_b, unsigned row_blocks,
                                             int64_t C, int64_t c, double& a, double& b) {
  a = 0;
  b = 0;
  for (unsigned r = 0; r < row_blocks; ++r) {
    a += double(partial_a[int64_t(r) * C + c]);
    b += double(partial_b[int64_t(r) * C + c]);
  }
}

// Op: template <int V> void apply(int64_t base, int64_t c) const, for elements base .. base+V-1
// of one row, channels c .. c+V-1.
template <int V, class Op>
__global__ void channel_elementwise_kernel(Op op, int64_t n, int64_t C) {
  const int64_t vectors = n / V;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    const int64_t base = i * V;
    op.template apply<V>(base, base % C);
  }
}

template <int V, class Op>
void launch_channel_elementwise(const Op& op, int64_t n, int64_t C, cudaStream_t stream) {
  constexpr int kThreads = 256;
  channel_elementwise_kernel<V, Op><<<grid_for(n / V, kThreads), kThreads, 0, stream>>>(op, n, C);
}

template <int VC, class Op>
void launch_channel_partial_sums(const Op& op, int64_t M, int64_t C, const ChannelLayout& L, float* partial_a,
                                 float* partial_b, cudaStream_t stream) {
  const dim3 grid(L.row_blocks, L.channel_blocks);
  channel_partial_sums_kernel<VC, Op><<<grid, kReduceThreads, 0, stream>>>(op, M, C, L.lanes, L.rows_per_step,
                                                                           partial_a, partial_b);
}

// The device that scratch tensors (partial sums) are allocated on: the current one, which is
// the device of the op's tensors. Scratch is freed to the caching allocator once the launches
// are queued, which is safe for later work on the same stream.
inline int current_device() {
  int device = 0;
  SG_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

}  // namespace sg::cuda
