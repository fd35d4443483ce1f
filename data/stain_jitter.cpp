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
  // The whole map is linear in optical density: OD' = OD @ T + t with
  //   T = hed_from_rgb @ diag(alpha_H, alpha_E, 1) @ rgb_from_hed,  t = (beta_H, beta_E, 0) @ rgb_from_hed,
  // so out_j = exp(ln(1e-6) * (sum_c OD_c T[c][j] + t_j)) = K_j * prod_c I_c ^ T[c][j]: nine
  // 256-entry tables, then three products per pixel (the same numbers as rgb_to_hed, jitter,
  // hed_to_rgb pixel by pixel, without the logs and exps).
  const Matrix3& from_rgb = hed_from_rgb();
  const std::array<double, 3> scale{alpha[0], alpha[1], 1.0};
  const std::array<double, 3> shift{beta[0], beta[1], 0.0};
  Matrix3 transfer{};
  std::array<double, 3> constant{};
  for (int j = 0; j < 3; ++j) {
    double offset = 0.0;
    for (int s = 0; s < 3; ++s) offset += shift[s] * kRgbFromHed[s][j];
    constant[j] = std::exp(kLogAdjust * offset);
    for (int c = 0; c < 3; ++c) {
      double sum = 0.0;
      for (int s = 0; s < 3; ++s) sum += from_rgb[c][s] * scale[s] * kRgbFromHed[s][j];
      transfer[c][j] = sum;
    }
  }
  const auto& od = optical_density_table();
  // factor[c][j][v] = exp(ln(1e-6) * OD(v) * T[c][j]) = max(v / 255, 1e-6) ^ T[c][j]
  std::array<std::array<std::array<double, 256>, 3>, 3> factor;
  for (int c = 0; c < 3; ++c)
    for (int j = 0; j < 3; ++j)
      for (int v = 0; v < 256; ++v) factor[c][j][v] = std::exp(kLogAdjust * od[v] * transfer[c][j]);

  const size_t pixels = static_cast<size_t>(rgb.width) * rgb.height;
  uint8_t* p = rgb.pixels.data();
  for (size_t i = 0; i < pixels; ++i, p += 3) {
    const uint8_t r = p[0], g = p[1], b = p[2];
    for (int j = 0; j < 3; ++j) {
      const double out = constant[j] * factor[0][j][r] * factor[1][j][g] * factor[2][j][b];
      p[j] = static_cast<uint8_t>(std::lround(std::clamp(out, 0.0, 1.0) * 255.0));
    }
  }
}

}  // namespace sg::data
