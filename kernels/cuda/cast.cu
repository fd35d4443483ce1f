// Casts: eight elements per thread step, vector loads and stores when both pointers allow
// them, a scalar tail. Conversions are core/half.h's (__float2half_rn / the bf16 bit rounding),
// bit-identical to the CPU.
#include <type_traits>

#include "kernels/cuda/cast.h"
#include "kernels/cuda/channel_reduce.cuh"

namespace sg::cuda {
namespace {

template <class D, class S>
__device__ __forceinline__ D convert(S v, float scale) {
  if constexpr (std::is_same_v<S, uint8_t>)
    return from_acc<D>(float(v) * scale);
  else
    return from_acc<D>(to_acc(v));
}

constexpr int kPerStep = 8;

template <class S, class D, bool kVectorised>
__global__ void cast_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n, float scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (kVectorised) {
    const int64_t vectors = n / kPerStep;
    for (int64_t i = first; i < vectors; i += stride) {
      const Pack<S, kPerStep> in = reinterpret_cast<const Pack<S, kPerStep>*>(src)[i];
      Pack<D, kPerStep> out;
#pragma unroll
      for (int j = 0; j < kPerStep; ++j) out.v[j] = convert<D>(in.v[j], scale);
      reinterpret_cast<Pack<D, kPerStep>*>(dst)[i] = out;
    }
    done = vectors * kPerStep;
  }
  for (int64_t i = done + first; i < n; i += stride) dst[i] = convert<D>(src[i], scale);
}

template <class S, class D>
void launch(const S* src, D* dst, int64_t n, float scale, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const bool vectorised = reinterpret_cast<uintptr_t>(src) % (kPerStep * sizeof(S)) == 0 &&
                          reinterpret_cast<uintptr_t>(dst) % (kPerStep * sizeof(D)) == 0;
  const unsigned grid = grid_for(n / kPerStep + 1, kThreads);
  if (vectorised)
    cast_kernel<S, D, true><<<grid, kThreads, 0, stream>>>(src, dst, n, scale);
  else
    cast_kernel<S, D, false><<<grid, kThreads, 0, stream>>>(src, dst, n, scale);
}

template <class S>
void cast_from(DType dst_dtype, const S* src, void* dst, int64_t n, float scale, cudaStream_t stream) {
  dispatch_floating(dst_dtype, "cast", [&](auto tag) {
    using D = typename decltype(tag)::type;
    launch(src, static_cast<D*>(dst), n, scale, stream);
  });
}

}  // namespace

void cast(DType src_dtype, DType dst_dtype, const void* src, void* dst, int64_t n, float scale, StreamHandle stream) {
  if (n == 0) return;
  if (src_dtype == DType::u8) {
    cast_from(dst_dtype, static_cast<const uint8_t*>(src), dst, n, scale, stream);
  } else {
    dispatch_floating(src_dtype, "cast", [&](auto tag) {
      using S = typename decltype(tag)::type;
      cast_from(dst_dtype, static_cast<const S*>(src), dst, n, scale, stream);
    });
  }
  SG_CUDA_CHECK_LAUNCH("cast");
}

}  // namespace sg::cuda
