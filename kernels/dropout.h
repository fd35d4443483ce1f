#pragma once
// Dropout and per-sample drop-connect (stochastic depth) from the Philox counter RNG.
//
// dropout: element i (flat index) is kept iff philox_uniform(seed, offset, i) >= p; kept values
// are scaled by 1 / (1 - p). drop-connect: sample n (the first extent of x) is kept iff
// philox_uniform(seed, offset, n) >= p, and the whole sample is scaled or zeroed.
// The mask is never stored: backward recomputes it from (seed, offset), and it is bit-identical
// on the CPU and on the GPU. The caller advances `offset` after each use (one offset per call
// site and step) so successive masks are independent.
// p = 0 is the identity. p = 1 is allowed and drops everything (all-zero output and gradient,
// like PyTorch's F.dropout(p=1)). p outside [0, 1] is an error.
// x/y/dx/dy are f32/f16/bf16 (one dtype), arithmetic in f32; y may alias x, dx may alias dy.
#include <cstdint>

#include "core/tensor.h"

namespace sg {

struct DropoutParams {
  double p = 0.5;
  uint64_t seed = 0;
  uint64_t offset = 0;
};

void dropout_forward(const DropoutParams& params, const Tensor& x, Tensor& y, const Stream& stream = {});
void dropout_backward(const DropoutParams& params, const Tensor& dy, Tensor& dx, const Stream& stream = {});

// x is [N, ...] (rank >= 1): one draw per sample.
void drop_connect_forward(const DropoutParams& params, const Tensor& x, Tensor& y, const Stream& stream = {});
void drop_connect_backward(const DropoutParams& params, const Tensor& dy, Tensor& dx, const Stream& stream = {});

}  // namespace sg
