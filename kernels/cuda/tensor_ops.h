#pragma once
// CUDA tensor-op launchers (hand-written kernels; declared without CUDA headers). Same layouts
// and semantics as kernels/tensor_ops.h; pointers are device pointers of `dtype`.
#include <cstdint>

#include "core/cuda/runtime.h"
#include "core/dtype.h"

namespace sg::cuda {

// x [N, HW, C], s [N, C]
void channel_scale_forward(DType dtype, const void* x, const void* s, void* y, int64_t n, int64_t hw, int64_t c,
                           StreamHandle stream);
void channel_scale_backward(DType dtype, const void* x, const void* s, const void* dy, void* dx, void* ds, int64_t n,
                            int64_t hw, int64_t c, StreamHandle stream);

void add(DType dtype, const void* a, const void* b, void* y, int64_t count, StreamHandle stream);
void axpy(DType dtype, float alpha, const void* x, void* y, int64_t count, StreamHandle stream);
void mul(DType dtype, const void* a, const void* b, void* y, int64_t count, StreamHandle stream);
void mul_backward(DType dtype, const void* a, const void* b, const void* dy, void* da, void* db, int64_t count,
                  StreamHandle stream);
void fill(DType dtype, void* y, float value, int64_t count, StreamHandle stream);
void scale(DType dtype, const void* x, float alpha, void* y, int64_t count, StreamHandle stream);

// dst[r, dst_offset + k] = src[r, src_offset + k] for r < rows, k < width (strides in elements).
void copy_columns(DType dtype, const void* src, int64_t src_stride, int64_t src_offset, void* dst, int64_t dst_stride,
                  int64_t dst_offset, int64_t rows, int64_t width, StreamHandle stream);

}  // namespace sg::cuda
