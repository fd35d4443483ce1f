#include "tests/support/synthetic_weights.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace sg::testing {

// Must equal CONV_GAIN in tests/golden/synthetic_weights.py.
constexpr double kConvGain = 1.3;

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char byte : text) {
    h ^= byte;
    h *= 0x100000001B3ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

std::pair<double, double> synthetic_range(const std::string& name, const Shape& shape, int64_t classifier_in) {
  if (shape.rank() == 4) {
    const double fan_in = double(shape[1] * shape[2] * shape[3]);
    const double a = kConvGain * std::sqrt(3.0 / fan_in);
    return {-a, a};
  }
  if (name.rfind("classifier.", 0) == 0) {
    const double a = 1.0 / std::sqrt(double(classifier_in));
    return {-a, a};
  }
  if (name.find(".se.") != std::string::npos || name.rfind("se.", 0) == 0) return {-0.1, 0.1};
  if (ends_with(name, ".running_var")) return {0.5, 1.5};
  if (ends_with(name, ".running_mean") || ends_with(name, ".bias")) return {-0.1, 0.1};
  if (ends_with(name, ".weight")) return {0.5, 1.5};
  throw Error(detail::concat("synthetic weights: no range for '", name, "' ", shape.str()));
}

Tensor synthetic_tensor(const std::string& name, const Shape& shape, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::f32, Device::cpu(), "synthetic weights");
  float* p = t.data_as<float>();
  const uint64_t base = fnv1a64(name);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double u = double(splitmix64(base + uint64_t(i)) >> 40) / double(1 << 24);
    p[i] = float(lo + (hi - lo) * u);
  }
  return t;
}

void fill_synthetic(nn::Module& model, int64_t classifier_in) {
  const auto fill = [&](const std::string& name, Tensor& value) {
    SG_CHECK(value.device().is_cpu() && value.dtype() == DType::f32, "fill_synthetic: '", name,
             "' must be an f32 CPU tensor");
    const auto [lo, hi] = synthetic_range(name, value.shape(), classifier_in);
    const Tensor s = synthetic_tensor(name, value.shape(), lo, hi);
    std::copy(s.data_as<float>(), s.data_as<float>() + s.numel(), value.data_as<float>());
  };
  for (nn::Parameter* p : model.parameters()) fill(p->name, p->value);
  for (nn::Buffer* b : model.buffers()) fill(b->name, b->value);
}

}  // namespace sg::testing
