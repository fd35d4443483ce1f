// Dropout: one thread per Philox block of four elements (the same four numbers the CPU
// draws), 4-element vector access when aligned. Drop-connect: one draw per sample.
#include "kernels/cuda/channel_reduce.cuh"
#include "kernels/cuda/dropout.h"
#include "kernels/dropout_math.h"

namespace sg::cuda {
namespace {

template <class T, bool kVectorised>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, float p, float scale,
                               uint64_t seed, uint64_t offset) {
  const int64_t blocks = (n + 3) / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    const PhiloxOutput r = philox_block(seed, offset, uint64_t(b));
    const int64_t first = 4 * b;
    if (kVectorised && first + 4 <= n) {
      float v[4];
      load_floats<T, 4>(x + first, v);
#pragma unroll
      for (int j = 0; j < 4; ++j)
        v[j] = math::dropout_apply(v[j], math::dropout_keep(philox_bits_to_uniform(r.v[j]), p), scale);
      store_floats<T, 4>(y + first, v);
    } else {
      for (int j = 0; j < 4 && first + j < n; ++j)
        y[first + j] = from_acc<T>(math::dropout_apply(
            to_acc(x[first + j]), math::dropout_keep(philox_bits_to_uniform(r.v[j]), p), scale));
    }
  }
}

template <class T>
__global__ void drop_connect_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t per_sample, float p,
                                    float scale, uint64_t seed, uint64_t offset) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t sample = uint64_t(i / per_sample);
    const bool keep = math::dropout_keep(philox_uniform(seed, offset, sample), p);
    y[i] = from_acc<T>(math::dropout_apply(to_acc(x[i]), keep, scale));
  }
}

// Whole 16-byte vectors within one sample (per_sample % V == 0): one draw per vector.
template <class T>
__global__ void drop_connect_vector_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t per_sample,
                                           float p, float scale, uint64_t seed, uint64_t offset) {
  constexpr int V = Vec16<T>::size;
  const int64_t vectors = n / V;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    const uint64_t sample = uint64_t(i * V / per_sample);
    const bool keep = math::dropout_keep(philox_uniform(seed, offset, sample), p);
    float v[V];
    load_floats<T, V>(x + i * V, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = math::dropout_apply(v[j], keep, scale);
    store_floats<T, V>(y + i * V, v);
  }
}

constexpr int kThreads = 256;

bool aligned_to(const void* p, size_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

}  // namespace

void dropout(DType dtype, const void* x, void* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset,
             StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vectorised = aligned_to(x, 4 * sizeof(T)) && aligned_to(y, 4 * sizeof(T));
    const unsigned grid = grid_for((n + 3) / 4, kThreads);
    if (vectorised)
      dropout_kernel<T, true><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n, p, scale,
                                                             seed, offset);
    else
      dropout_kernel<T, false><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n, p,
                                                              scale, seed, offset);
  });
  SG_CUDA_CHECK_LAUNCH("dropout");
}

void drop_connect(DType dtype, const void* x, void* y, int64_t N, int64_t per_sample, float p, float scale,
                  uint64_t seed, uint64_t offset, StreamHandle stream) {
  const int64_t n = N * per_sample;
  if (n == 0) return;
  dispatch_floating(dtype, "drop_connect", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (per_sample % Vec16<T>::size == 0 && aligned16(x) && aligned16(y))
      drop_connect_vector_kernel<T><<<grid_for(n / Vec16<T>::size, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), n, per_sample, p, scale, seed, offset);
    else
      drop_connect_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), n, per_sample, p, scale, seed, offset);
  });
  SG_CUDA_CHECK_LAUNCH("drop_connect");
}

}  // namespace sg::cuda
