#pragma once
// The network's input from uint8 RGB mosaics, the same for training, validation and grading:
//   x = (invert ? 255 - p : p) / 255, then (x - mean[c]) / std[c]
// (inversion makes the white background and padding 0, REFERENCE section 2; mean and std are the
// model config's, ImageNet's by default).
#include <array>
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace sg::train {

struct InputNormalization {
  bool invert = true;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// pixels [n, height, width, 3] -> f32 CPU tensor [n, height, width, 3].
Tensor mosaics_to_input(std::span<const uint8_t> pixels, int64_t n, int64_t height, int64_t width,
                        const InputNormalization& normalization);

}  // namespace sg::train
