#pragma once
// The network's input from uint8 RGB mosaics, the same for training, validation and grading:
//   x = (invert ? 255 - p : p) / 255, then (x - mean[c]) / std[c]
// (inversion makes the white background and padding 0, docs/panda_and_openslide.md section 7; mean and std are the
// model config's, ImageNet's by default).
#include <array>
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace sg::grading {

struct InputNormalization {
  bool invert = true;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// The normalisation as one multiply and one add per value, x = scale[c] * p + shift[c] (the
// inversion folded in): the constants both functions below use, so they give the same bits.
struct InputAffine {
  std::array<float, 3> scale{}, shift{};
};
InputAffine input_affine(const InputNormalization& normalization);  // throws unless every std > 0

// pixels [n, height, width, 3] -> f32 CPU tensor [n, height, width, 3], on the host.
Tensor mosaics_to_input(std::span<const uint8_t> pixels, int64_t n, int64_t height, int64_t width,
                        const InputNormalization& normalization);

// The same on the pixels' device (kernels/normalize_input.h): u8 [n, height, width, 3] -> `dtype`
// (f32, f16 or bf16) of that shape there, allocated for `stream` and computed on it. The values are
// mosaics_to_input's, rounded to `dtype`. The trainer uploads the loader's uint8 batches (a
// quarter of the f32 bytes) and normalises them on the GPU with this.
Tensor normalize_mosaics(const Tensor& pixels, DType dtype, const InputNormalization& normalization,
                         const Stream& stream = {});

}  // namespace sg::grading
