#pragma once
// Deterministic weight initialisation (Philox counter RNG, so a seed gives the same weights on
// every machine): torchvision's EfficientNet scheme.
#include <cstdint>

#include "core/device.h"
#include "core/tensor.h"

namespace sg::nn {

// Normal(0, std) values, f32, on `device`; `stream_id` separates the tensors of one seed.
Tensor init_normal(const Shape& shape, double std, uint64_t seed, uint64_t stream_id, Device device);
// Uniform(-bound, bound) values, f32, on `device`.
Tensor init_uniform(const Shape& shape, double bound, uint64_t seed, uint64_t stream_id, Device device);
Tensor init_constant(const Shape& shape, float value, Device device);

// A stable id per parameter name (FNV-1a), so adding a layer does not change the others.
uint64_t init_stream_id(const std::string& name);

}  // namespace sg::nn
