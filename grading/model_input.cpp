#include "grading/model_input.h"

#include "core/error.h"
#include "kernels/normalize_input.h"

namespace sg::grading {

InputAffine input_affine(const InputNormalization& normalization) {
  for (float s : normalization.std) SG_CHECK(s > 0, "model input: std values must be positive");
  InputAffine affine;
  for (size_t c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * normalization.std[c]);
    affine.scale[c] = normalization.invert ? -scale : scale;
    affine.shift[c] =
        (normalization.invert ? 1.0f / normalization.std[c] : 0.0f) - normalization.mean[c] / normalization.std[c];
  }
  return affine;
}

Tensor mosaics_to_input(std::span<const uint8_t> pixels, int64_t n, int64_t height, int64_t width,
                        const InputNormalization& normalization) {
  const size_t count = size_t(n) * size_t(height) * size_t(width) * 3;
  SG_CHECK(pixels.size() == count, "model input: ", pixels.size(), " bytes for ", n, " mosaics of ", width, "x", height,
           "x3 (", count, " expected)");
  // Per channel, x -> a * p + b: one multiply-add per value.
  const InputAffine affine = input_affine(normalization);
  const std::array<float, 3>& a = affine.scale;
  const std::array<float, 3>& b = affine.shift;
  Tensor out = Tensor::empty(Shape{n, height, width, 3}, DType::f32, Device::cpu());
  float* x = out.data_as<float>();
  for (int64_t i = 0; i < int64_t(count / 3); ++i)
    for (int c = 0; c < 3; ++c) x[i * 3 + c] = a[size_t(c)] * float(pixels[size_t(i * 3 + c)]) + b[size_t(c)];
  return out;
}

Tensor normalize_mosaics(const Tensor& pixels, DType dtype, const InputNormalization& normalization,
                         const Stream& stream) {
  SG_CHECK(pixels.defined() && pixels.dtype() == DType::u8 && pixels.rank() == 4 && pixels.dim(3) == 3,
           "model input: pixels are ", pixels.defined() ? pixels.str() : std::string("undefined"),
           ", expected u8 [n, height, width, 3] mosaics");
  const InputAffine affine = input_affine(normalization);
  Tensor out = Tensor::empty(pixels.shape(), dtype, pixels.device(), stream, "model input");
  normalize_input(pixels, affine.scale, affine.shift, out, stream);
  return out;
}

}  // namespace sg::grading
