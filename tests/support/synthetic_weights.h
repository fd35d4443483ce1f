#pragma once
// Deterministic synthetic weights and inputs, bit-identical to tests/golden/synthetic_weights.py
// (read its docstring for the definition). Element i of the tensor called `name`, in our layout:
//   u = (splitmix64(fnv1a64(name) + i) >> 40) / 2^24,  value = f32(lo + (hi - lo) * u) in double.
// The PyTorch golden files (tests/golden/golden_efficientnet.py) then need no stored weights.
#include <cstdint>
#include <string>
#include <utility>

#include "core/tensor.h"
#include "nn/module.h"

namespace sg::testing {

uint64_t fnv1a64(const std::string& text);
uint64_t splitmix64(uint64_t x);

// The range synthetic_range() / classifier_range() of the Python side gives `name` with `shape`
// (classifier_in: the classifier's input features). Throws naming a tensor it has no rule for.
std::pair<double, double> synthetic_range(const std::string& name, const Shape& shape, int64_t classifier_in);

// f32 CPU tensor of `shape` with values in [lo, hi).
Tensor synthetic_tensor(const std::string& name, const Shape& shape, double lo, double hi);

// Overwrites every parameter and buffer of `model` (CPU, f32) with its synthetic values.
void fill_synthetic(nn::Module& model, int64_t classifier_in);

}  // namespace sg::testing
