#include "data/stain_jitter.h"

#include <algorithm>
#include <cmath>

namespace sg::data {
namespace {

using Matrix3 = std::array<std::array<double, 3>, 3>;

// Rows: the RGB optical densities of one unit of haematoxylin, eosin, DAB (skimage's values).
constexpr Matrix3 kRgbFromHed = {{{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}}};

Matrix3 inverse(const Matrix3& m) {
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  Matrix3 inv{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      // Cofactor of (c, r) over the determinant: the adjugate is the cofactor matrix transposed.
      const int r0 = (c + 1) % 3, r1 = (c + 2) % 3, c0 = (r + 1) % 3, c1 = (r + 2) % 3;
      inv[r][c] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
    }
  }
  return inv;
}

const Matrix3& hed_from_rgb() {
  static const Matrix3 m = inverse(kRgbFromHed);
  return m;
}

const double kLogAdjust = std::log(1e-6);  // negative

// Scaled optical density of each 8-bit level: ln(max(v / 255, 1e-6)) / ln(1e-6).
const std::array<double, 256>& optical_density_table() {
  static const std::array<double, 256> table = [] {
    std::array<double, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = std::log(std::max(v / 255.0, 1e-6)) / kLogAdjust;
    return t;
  }();
  return table;
}

Stains to_stains(const std::array<double, 3>& od) {
  const Matrix3& m = hed_from_rgb();
  Stains s{};
  for (int j = 0; j < 3; ++j) s[j] = od[0] * m[0][j] + od[1] * m[1][j] + od[2] * m[2][j];
  return s;
}

}  // namespace

Stains rgb_to_hed(uint8_t r, uint8_t g, uint8_t b) {
  const auto& od = optical_density_table();
  return to_stains({od[r], od[g], od[b]});
}

std::array<double, 3> hed_to_rgb(const Stains& hed) {
  std::array<double, 3> rgb{};
  for (int j = 0; j < 3; ++j) {
    const double log_rgb =
        (hed[0] * kRgbFromHed[0][j] + hed[1] * kRgbFromHed[1][j] + hed[2] * kRgbFromHed[2][j]) * kLogAdjust;
    rgb[j] = std::clamp(std::exp(log_rgb), 0.0, 1.0);
  }
  return rgb;
}

void jitter_stains(Image& rgb, const std::array<float, 2>& alpha, const std::array<float, 2>& beta) {
  SG_CHECK(rgb.channels == 3, "jitter_stains: expected an RGB image (3 channels), got ", rgb.channels);
  const size_t pixels = static_cast<size_t>(rgb.width) * rgb.height;
  uint8_t* p = rgb.pixels.data();
  for (size_t i = 0; i < pixels; ++i, p += 3) {
    Stains s = rgb_to_hed(p[0], p[1], p[2]);
    s[0] = alpha[0] * s[0] + beta[0];
    s[1] = alpha[1] * s[1] + beta[1];
    const std::array<double, 3> out = hed_to_rgb(s);
    for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::lround(out[c] * 255.0));
  }
}

}  // namespace sg::data
