#pragma once
// Warp and block reductions in a fixed order (xor butterflies, then the warps' partials in
// warp order): the same inputs give the same bits on every run, unlike float atomics.
#include <cuda_runtime.h>

namespace sg::cuda {

template <class F>
__device__ __forceinline__ F warp_sum(F v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The sum of v over the block, returned to every thread. blockDim.x must be a multiple of 32
// (at most 1024), and every thread of the block must call it.
template <class F>
__device__ F block_sum(F v) {
  __shared__ F warp_partials[32];
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5, warps = int(blockDim.x) >> 5;
  v = warp_sum(v);
  __syncthreads();  // an earlier call may still be reading warp_partials
  if (lane == 0) warp_partials[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? warp_partials[lane] : F(0));
}

}  // namespace sg::cuda
