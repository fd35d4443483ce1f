#pragma once
// H&E colour deconvolution (Ruifrok & Johnston 2001) and stain jitter (Tellez et al. 2018).
//
// Conventions are skimage.color.rgb2hed / hed2rgb (scikit-image 0.19):
//   I = max(rgb / 255, 1e-6);  OD = ln(I) / ln(1e-6)          (optical density scaled so I = 1e-6 is 1)
//   [H, E, D] = OD @ hed_from_rgb,  hed_from_rgb = inverse of rgb_from_hed
//   rgb_from_hed = [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]]   (rows: H, E, DAB)
//   back: rgb = clip(exp(-(HED * -ln(1e-6)) @ rgb_from_hed), 0, 1)
// One difference: skimage clamps negative concentrations to 0 in rgb2hed; we keep them, so
// deconvolving and reconvolving returns the input (a pale pixel can have a slightly negative H).
#include <array>
#include <cstdint>

#include "data/image.h"

namespace sg::data {

using Stains = std::array<double, 3>;  // H, E, DAB concentrations (skimage units)

Stains rgb_to_hed(uint8_t r, uint8_t g, uint8_t b);
std::array<double, 3> hed_to_rgb(const Stains& hed);  // RGB in [0, 1], clipped

// Concentration c of stain s (0 = H, 1 = E) becomes alpha[s] * c + beta[s]; DAB is left as it
// is. RGB uint8 in place, rounded to nearest. alpha = 1, beta = 0 returns the input.
void jitter_stains(Image& rgb, const std::array<float, 2>& alpha, const std::array<float, 2>& beta);

}  // namespace sg::data
