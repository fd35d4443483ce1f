#pragma once
// Helpers shared by the CUDA kernels: launch checks, grid sizing and 16-byte vector access.
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "core/half.h"

namespace sg::cuda {

// Call after every launch: turns a launch failure into an sg::Error naming the op.
#define SG_CUDA_CHECK_LAUNCH(op_name) ::sg::cuda::check_last_error(op_name)

#define SG_CUDA_CHECK(call)                                                                          \
  do {                                                                                               \
    const cudaError_t sg_status_ = (call);                                                           \
    if (sg_status_ != cudaSuccess)                                                                   \
      throw ::sg::Error(::sg::detail::concat(#call, " failed: ", cudaGetErrorString(sg_status_))); \
  } while (0)

// Enough blocks to fill any current GPU several times over without a huge grid.
inline unsigned grid_for(int64_t work_items, int threads_per_block) {
  const int64_t blocks = (work_items + threads_per_block - 1) / threads_per_block;
  return unsigned(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// N consecutive elements of T, loaded and stored as one access (N * sizeof(T) a power of two
// up to 16 bytes; 32 bytes become two accesses). Pointers must be aligned to sizeof(Pack).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  static constexpr int size = N;
  T v[N];
};

// 16 bytes of T: 4 x f32 or 8 x f16/bf16.
template <class T>
using Vec16 = Pack<T, int(16 / sizeof(T))>;

template <class T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}
template <class T, int N>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& v) {
  *reinterpret_cast<Pack<T, N>*>(p) = v;
}

// N consecutive elements as floats, in one access.
template <class T, int N>
__device__ __forceinline__ void load_floats(const T* p, float (&out)[N]) {
  const Pack<T, N> v = load_pack<T, N>(p);
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = to_acc(v.v[j]);
}

template <class T, int N>
__device__ __forceinline__ void store_floats(T* p, const float (&in)[N]) {
  Pack<T, N> v;
#pragma unroll
  for (int j = 0; j < N; ++j) v.v[j] = from_acc<T>(in[j]);
  store_pack<T, N>(p, v);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// True when every non-null pointer is 16-byte aligned.
inline bool all_aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (p && !aligned16(p)) return false;
  return true;
}

// Calls fn(std::integral_constant<int, W>) with W = Vec16<T>::size when c is a multiple of it
// and every (non-null) pointer is 16-byte aligned, else W = 1: the widest access NHWC rows allow.
template <class T, class Fn>
void with_pack_width(int64_t c, std::initializer_list<const void*> pointers, Fn&& fn) {
  constexpr int V = Vec16<T>::size;
  if (c % V == 0 && all_aligned16(pointers)) {
    fn(std::integral_constant<int, V>{});
  } else {
    fn(std::integral_constant<int, 1>{});
  }
}

}  // namespace sg::cuda
