#pragma once
// Pieces shared by the convolution kernels: 16-byte vector loads/stores converted to float,
// stream-ordered scratch memory, and a deterministic column sum (two passes, fixed order).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "core/half.h"
#include "core/tensor.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_conv2d_scratch.h"

namespace sg::cuda::conv2d_detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- 16-byte vectors of T as floats ----------------------------------------------------------
template <class T>
inline constexpr int kVec = int(16 / sizeof(T));  // 4 x f32, 8 x f16/bf16

template <class T>
__device__ __forceinline__ void unpack16(const uint4& u, float* out) {
  const uint32_t words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (sizeof(T) == 4) {
      out[i] = __uint_as_float(words[i]);
    } else if constexpr (std::is_same_v<T, Half>) {
      out[2 * i] = half_bits_to_float(uint16_t(words[i] & 0xffffu));
      out[2 * i + 1] = half_bits_to_float(uint16_t(words[i] >> 16));
    } else {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
}

template <class T>
__device__ __forceinline__ uint4 pack16(const float* in) {
  uint32_t words[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (sizeof(T) == 4) {
      words[i] = __float_as_uint(in[i]);
    } else {
      words[i] = uint32_t(from_acc<T>(in[2 * i]).bits) | (uint32_t(from_acc<T>(in[2 * i + 1]).bits) << 16);
    }
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

// V consecutive elements at p as floats: one 16-byte load when V is the vector size, else V
// scalar loads.
template <class T, int V>
__device__ __forceinline__ void load_floats(const T* __restrict__ p, float (&out)[V]) {
  if constexpr (V == kVec<T>) {
    unpack16<T>(__ldg(reinterpret_cast<const uint4*>(p)), out);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = to_acc(p[i]);
  }
}

template <class T, int V>
__device__ __forceinline__ void store_floats(T* __restrict__ p, const float (&in)[V]) {
  if constexpr (V == kVec<T>) {
    *reinterpret_cast<uint4*>(p) = pack16<T>(in);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) p[i] = from_acc<T>(in[i]);
  }
}

// ---- Scratch memory from the device's caching allocator -----------------------------------
// Scratch counts against the allocator's cap like every tensor (a capped big card must behave
// like a 4 GB one). The block returns to the cache when the launcher returns, allocated for the
// launch's stream: reuse by later work on that stream is ordered after these kernels, and another
// stream waits for them (core/allocator.h, "Streams").
class DeviceScratch {
 public:
  DeviceScratch(size_t bytes, StreamHandle stream) {
    if (bytes == 0) return;
    int device = 0;
    SG_CUDA_CHECK(cudaGetDevice(&device));
    tensor_ = Tensor::empty({int64_t((bytes + sizeof(float) - 1) / sizeof(float))}, DType::f32, Device::cuda(device),
                            stream, "conv2d scratch");
  }
  float* floats() const { return static_cast<float*>(tensor_.data()); }

 private:
  Tensor tensor_;
};

// ---- Deterministic column sums ---------------------------------------------------------------
// Writes a float sum as T into row `chunk` of a [chunks, cols] array.
template <class T>
struct StoreRow {
  T* dst;
  int cols;
  __device__ void operator()(int chunk, int c, float s) const { dst[int64_t(chunk) * cols + c] = from_acc<T>(s); }
};

// in [rows, cols]; block (32, 8), grid (ceil(cols / 32), chunks): block y sums rows
// [chunk * rows_per_chunk, +rows_per_chunk) of 32 columns, each thread every 8th row, then the
// 8 partial sums in a fixed order. Same inputs, same bits.
template <class Tin, class Out>
__global__ void __launch_bounds__(256) column_sum_kernel(const Tin* __restrict__ in, int64_t rows, int cols,
                                                         int64_t rows_per_chunk, Out out) {
  __shared__ float partial[8][33];
  const int c = int(blockIdx.x) * 32 + int(threadIdx.x);
  const int chunk = int(blockIdx.y);
  const int64_t r_begin = int64_t(chunk) * rows_per_chunk;
  const int64_t r_end = min(rows, r_begin + rows_per_chunk);
  float acc = 0.0f;
  if (c < cols)
    for (int64_t r = r_begin + threadIdx.y; r < r_end; r += 8) acc += to_acc(in[r * cols + c]);
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) s += partial[i][threadIdx.x];
    out(chunk, c, s);
  }
}

// Sums in [rows, cols] over rows into out(0, c, sum): one pass when rows are few, else partial
// sums per chunk of rows into scratch and a second pass over the chunks.
template <class Tin, class Out>
void column_sum(const Tin* in, int64_t rows, int cols, Out out, StreamHandle stream, const char* op) {
  const dim3 block(32, 8);
  const unsigned col_blocks = unsigned(ceil_div(cols, 32));
  const int64_t chunks = column_sum_chunks(rows);  // kernels/cuda_conv2d_scratch.h
  if (chunks == 0) {
    column_sum_kernel<Tin, Out><<<dim3(col_blocks, 1), block, 0, stream>>>(in, rows, cols, std::max<int64_t>(rows, 1), out);
    SG_CUDA_CHECK_LAUNCH(op);
    return;
  }
  const int64_t rows_per_chunk = ceil_div(rows, chunks);
  DeviceScratch scratch(size_t(chunks) * size_t(cols) * sizeof(float), stream);
  column_sum_kernel<Tin, StoreRow<float>><<<dim3(col_blocks, unsigned(chunks)), block, 0, stream>>>(
      in, rows, cols, rows_per_chunk, StoreRow<float>{scratch.floats(), cols});
  SG_CUDA_CHECK_LAUNCH(op);
  column_sum_kernel<float, Out><<<dim3(col_blocks, 1), block, 0, stream>>>(scratch.floats(), chunks, cols, chunks, out);
  SG_CUDA_CHECK_LAUNCH(op);
}

}  // namespace sg::cuda::conv2d_detail
