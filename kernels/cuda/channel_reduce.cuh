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
#include "kernels/cuda/common.cuh"
#include "kernels/scalar_math.h"

namespace sg::cuda {

constexpr int kReduceThreads = 256;
constexpr int64_t kMaxRowBlocks = 512;

struct ChannelLayout {
  int lanes;          // channel groups (of VC channels) per block
  int rows_per_step;  // rows a block reads at once: kReduceThreads / lanes
  unsigned channel_blocks;
  unsigned row_blocks;
};

inline ChannelLayout channel_layout(int64_t M, int64_t C, int vc) {
  ChannelLayout L;
  const int64_t groups = (C + vc - 1) / vc;
  L.lanes = int(groups < kReduceThreads ? groups : kReduceThreads);
  L.rows_per_step = kReduceThreads / L.lanes;
  L.channel_blocks = unsigned((groups + L.lanes - 1) / L.lanes);
  // At least ~16 rows per thread so that partial sums stay few; at most kMaxRowBlocks.
  int64_t row_blocks = (M + int64_t(L.rows_per_step) * 16 - 1) / (int64_t(L.rows_per_step) * 16);
  row_blocks = row_blocks < 1 ? 1 : (row_blocks > kMaxRowBlocks ? kMaxRowBlocks : row_blocks);
  L.row_blocks = unsigned(row_blocks);
  return L;
}

// 16 / sizeof(T) channels per thread when every row starts 16-byte aligned, else 1.
template <class T>
inline bool channels_vectorisable(int64_t C, std::initializer_list<const void*> pointers) {
  return C % Vec16<T>::size == 0 && all_aligned16(pointers);
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
