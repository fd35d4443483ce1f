#pragma once
// Helpers shared by the CUDA kernels: launch checks, grid sizing and 16-byte vector access.
#include <cuda_runtime.h>

#include <cstdint>

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

// 16 bytes of T, loaded and stored as one vector instruction.
template <class T>
struct alignas(16) Vec16 {
  static constexpr int size = int(16 / sizeof(T));
  T v[size];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace sg::cuda
