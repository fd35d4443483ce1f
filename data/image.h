#pragma once
// An 8-bit image in host memory, interleaved and row-major: pixels[(y * width + x) * channels + c],
// i.e. [height, width, channels]. The slide pipeline passes these between its stages (slide
// regions, tissue masks, tiles, mosaics); OpenCV works on them through data/opencv_view.h without
// copying.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace sg::data {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int c, uint8_t fill = 0) : width(w), height(h), channels(c) {
    SG_CHECK(w >= 0 && h >= 0 && c > 0, "Image: bad size ", w, "x", h, "x", c);
    pixels.assign(static_cast<size_t>(w) * h * c, fill);
  }

  bool empty() const { return pixels.empty(); }
  size_t row_bytes() const { return static_cast<size_t>(width) * channels; }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
  uint8_t* at(int x, int y) { return row(y) + static_cast<size_t>(x) * channels; }
  const uint8_t* at(int x, int y) const { return row(y) + static_cast<size_t>(x) * channels; }
};

}  // namespace sg::data
