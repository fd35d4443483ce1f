#include "nn/init.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "core/philox.h"

namespace sg::nn {

namespace {
// A meta tensor has no values (core/meta_device.h): the shape is all an initialiser gives it.
Tensor meta_parameter(const Shape& shape) { return Tensor::empty(shape, DType::f32, Device::meta(), "parameter"); }

Tensor host_to(const std::vector<float>& values, const Shape& shape, Device device) {
  Tensor host = Tensor::from_floats(values, shape, DType::f32);
  return device.is_cuda() ? host.to(device) : host;
}
}  // namespace

Tensor init_normal(const Shape& shape, double std, uint64_t seed, uint64_t stream_id, Device device) {
  if (device.is_meta()) return meta_parameter(shape);
  std::vector<float> values(size_t(shape.numel()));
  for (size_t i = 0; i < values.size(); ++i) {
    // Box-Muller on two Philox uniforms; 1 - u keeps the log argument in (0, 1].
    const double u1 = 1.0 - double(philox_uniform(seed, stream_id, 2 * i));
    const double u2 = double(philox_uniform(seed, stream_id, 2 * i + 1));
    values[i] = float(std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }
  return host_to(values, shape, device);
}

Tensor init_uniform(const Shape& shape, double bound, uint64_t seed, uint64_t stream_id, Device device) {
  if (device.is_meta()) return meta_parameter(shape);
  std::vector<float> values(size_t(shape.numel()));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = float(bound * (2.0 * double(philox_uniform(seed, stream_id, i)) - 1.0));
  return host_to(values, shape, device);
}

Tensor init_constant(const Shape& shape, float value, Device device) {
  if (device.is_meta()) return meta_parameter(shape);
  return host_to(std::vector<float>(size_t(shape.numel()), value), shape, device);
}

uint64_t init_stream_id(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace sg::nn
