#pragma once
// Small tensor ops used around the convolutions, f32/f16/bf16 storage with f32 arithmetic:
//   channel scale (squeeze-excite): y[n,h,w,c] = x[n,h,w,c] * s[n,c], and its backward;
//   elementwise add / add_ / axpy / mul (+ backward) / fill_ / scale;
//   concatenation along the last (channel) axis and its backward (the split).
// Every output is overwritten unless the name says it accumulates (add_, axpy). Reductions are
// deterministic (fixed order). Errors name the op and the shapes.
#include <span>

#include "core/tensor.h"

namespace sg {

// x [N, H, W, C], s [N, C] -> y [N, H, W, C]; y may alias x.
void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y, const Stream& stream = {});
// dx = dy * s [N, H, W, C]; ds[n, c] = sum over h, w of dy * x [N, C].
void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor& dx, Tensor& ds,
                            const Stream& stream = {});

// y = a + b (same shapes); y may alias a or b. The backward of an add is the identity.
void add(const Tensor& a, const Tensor& b, Tensor& y, const Stream& stream = {});
// a += b (residuals, gradient accumulation).
void add_(Tensor& a, const Tensor& b, const Stream& stream = {});
// y = alpha * x + y.
void axpy(float alpha, const Tensor& x, Tensor& y, const Stream& stream = {});
// y = a * b; y may alias a or b.
void mul(const Tensor& a, const Tensor& b, Tensor& y, const Stream& stream = {});
// da = dy * b, db = dy * a (da and db must not alias a, b or dy).
void mul_backward(const Tensor& a, const Tensor& b, const Tensor& dy, Tensor& da, Tensor& db,
                  const Stream& stream = {});
// Every element = value (rounded to the storage type).
void fill_(Tensor& t, float value, const Stream& stream = {});
// y = alpha * x; y may alias x.
void scale(const Tensor& x, float alpha, Tensor& y, const Stream& stream = {});

// Concatenation along the last axis: inputs [..., C_i] (same leading extents) -> y [..., sum C_i].
void concat_channels_forward(std::span<const Tensor> inputs, Tensor& y, const Stream& stream = {});
// The split: dinputs[i] [..., C_i] = the matching channel slice of dy.
void concat_channels_backward(const Tensor& dy, std::span<Tensor> dinputs, const Stream& stream = {});

}  // namespace sg
