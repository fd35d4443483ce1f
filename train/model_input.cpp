#include "train/model_input.h"

#include "core/error.h"

namespace sg::train {

Tensor mosaics_to_input(std::span<const uint8_t> pixels, int64_t n, int64_t height, int64_t width,
                        const InputNormalization& normalization) {
  const size_t count = size_t(n) * size_t(height) * size_t(width) * 3;
  SG_CHECK(pixels.size() == count, "model input: ", pixels.size(), " bytes for ", n, " mosaics of ", width, "x", height,
           "x3 (", count, " expected)");
  for (float s : normalization.std) SG_CHECK(s > 0, "model input: std values must be positive");
  // Per channel, x -> a * p + b: one multiply-add per value.
  std::array<float, 3> a{}, b{};
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * normalization.std[size_t(c)]);
    a[size_t(c)] = normalization.invert ? -scale : scale;
    b[size_t(c)] = (normalization.invert ? 1.0f / normalization.std[size_t(c)] : 0.0f) -
                   normalization.mean[size_t(c)] / normalization.std[size_t(c)];
  }
  Tensor out = Tensor::empty(Shape{n, height, width, 3}, DType::f32, Device::cpu());
  float* x = out.data_as<float>();
  for (int64_t i = 0; i < int64_t(count / 3); ++i)
    for (int c = 0; c < 3; ++c) x[i * 3 + c] = a[size_t(c)] * float(pixels[size_t(i * 3 + c)]) + b[size_t(c)];
  return out;
}

}  // namespace sg::train
