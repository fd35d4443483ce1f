#pragma once
// Fast CPU tensor ops (OpenMP, loops the compiler vectorises). Same semantics as tensor_ops_ref.h.
#include <cstdint>

#include "core/dtype.h"

namespace sg::cpu {

// x [N, HW, C], s [N, C]
void channel_scale_forward(DType dtype, const void* x, const void* s, void* y, int64_t n, int64_t hw, int64_t c);
void channel_scale_backward(DType dtype, const void* x, const void* s, const void* dy, void* dx, void* ds, int64_t n,
                            int64_t hw, int64_t c);

void add(DType dtype, const void* a, const void* b, void* y, int64_t count);
void axpy(DType dtype, float alpha, const void* x, void* y, int64_t count);
void mul(DType dtype, const void* a, const void* b, void* y, int64_t count);
void mul_backward(DType dtype, const void* a, const void* b, const void* dy, void* da, void* db, int64_t count);
void fill(DType dtype, void* y, float value, int64_t count);
void scale(DType dtype, const void* x, float alpha, void* y, int64_t count);

// Copies a [rows, width] block of columns: dst[r, dst_offset + k] = src[r, src_offset + k], with
// row strides src_stride / dst_stride (in elements). Concatenation and split are made of these.
void copy_columns(DType dtype, const void* src, int64_t src_stride, int64_t src_offset, void* dst, int64_t dst_stride,
                  int64_t dst_offset, int64_t rows, int64_t width);

}  // namespace sg::cpu
