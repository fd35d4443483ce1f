#pragma once
// Seeded augmentation of RGB uint8 tiles and mosaics (the transforms named in the Radboud paper,
// docs/panda_and_openslide.md section 7): flips, transpose, rot90, small rotations and scaling, hue / saturation /
// brightness / contrast, H&E stain jitter (data/stain_jitter.h), Gaussian noise, Gaussian blur.
// Image operations are OpenCV's.
//
// Randomness: every draw comes from Philox (core/philox.h) keyed by the caller's seed, with one
// counter stream per operation, so the same seed gives the same bytes on any thread, and turning
// one operation off does not change what the others draw.
#include <cstdint>
#include <vector>

#include "data/image.h"

namespace sg::data {

// A closed interval [min, max] that a parameter is drawn from uniformly; min == max fixes it.
struct UniformRange {
  float min = 0.0f;
  float max = 0.0f;
};

// The eight symmetries of a square, each op applied with its own probability.
struct DihedralConfig {
  float flip_horizontal = 0.0f;  // probability of a left-right flip
  float flip_vertical = 0.0f;    // probability of an up-down flip
  float transpose = 0.0f;        // probability of swapping x and y
  float rot90 = 0.0f;            // probability of a rotation by 90, 180 or 270 degrees (chosen uniformly)
};

// Each operation has a probability (0 = off) and the range its parameter is drawn from.
// The defaults are a moderate PANDA recipe; AugmentConfig::none() turns everything off.
struct AugmentConfig {
  // Per tile, and separately for the whole mosaic (augment_mosaic uses only `mosaic`).
  DihedralConfig tile{0.5f, 0.5f, 0.5f, 0.0f};
  DihedralConfig mosaic{0.5f, 0.5f, 0.5f, 0.0f};

  // Rotation about the tile centre (degrees, counter-clockwise) and isotropic scaling, one warp,
  // bilinear, the uncovered corners white (255) like the slide background.
  float affine_probability = 0.3f;
  UniformRange rotation_degrees{-15.0f, 15.0f};
  UniformRange scale{0.9f, 1.1f};

  // Hue shift in degrees (0-360 hue circle), saturation as a factor, both in HSV.
  float hue_probability = 0.3f;
  UniformRange hue_degrees{-8.0f, 8.0f};
  float saturation_probability = 0.3f;
  UniformRange saturation_factor{0.9f, 1.1f};

  // Brightness: add this fraction of 255. Contrast: scale the distance from the tile's mean.
  float brightness_probability = 0.3f;
  UniformRange brightness_shift{-0.1f, 0.1f};
  float contrast_probability = 0.3f;
  UniformRange contrast_factor{0.9f, 1.1f};

  // H&E stain jitter (data/stain_jitter.h): H and E concentrations c -> alpha * c + beta, each
  // stain drawing its own alpha and beta. beta is in skimage's concentration units (natural optical
  // density / -ln(1e-6) = OD / 13.8); +-0.004 is about +-0.05 natural OD.
  float stain_probability = 0.5f;
  UniformRange stain_alpha{0.95f, 1.05f};
  UniformRange stain_beta{-0.004f, 0.004f};

  // Additive Gaussian noise, std in 8-bit levels, independent per pixel and channel.
  float noise_probability = 0.2f;
  UniformRange noise_std{0.0f, 5.0f};

  // Gaussian blur, sigma in pixels (kernel size from sigma, reflected borders).
  float blur_probability = 0.1f;
  UniformRange blur_sigma{0.1f, 1.0f};

  // Every probability 0: augment_tile and augment_mosaic leave the image as it is.
  static AugmentConfig none();
};

// One tile, in place: dihedral ops, rotation/scale, stain jitter, hue, saturation, brightness,
// contrast, blur, noise, in that order. RGB, 3 channels (the dihedral ops accept any channel
// count; rot90 and transpose of a non-square tile swap its width and height).
void augment_tile(Image& tile, const AugmentConfig& config, uint64_t seed);

// The geometric part of augment_tile with the same draws for the same seed (nearest-neighbour,
// corners 0): applies to a label mask exactly what augment_tile did to its tile.
void augment_tile_mask(Image& mask, const AugmentConfig& config, uint64_t seed);

// A whole mosaic, in place: the `mosaic` dihedral ops only. Any channel count.
void augment_mosaic(Image& mosaic, const AugmentConfig& config, uint64_t seed);

// The single operations, for tests and for callers that compose their own recipe.
void flip_horizontal(Image& image);
void flip_vertical(Image& image);
void transpose(Image& image);
void rotate90(Image& image, int quarter_turns);  // counter-clockwise, any integer
// `border` is the value of every channel where the warped image does not cover the output.
void rotate_and_scale(Image& image, float degrees, float scale, bool nearest = false, uint8_t border = 255);
void shift_hue(Image& rgb, float degrees);
void scale_saturation(Image& rgb, float factor);
void adjust_brightness_contrast(Image& rgb, float brightness_shift, float contrast_factor);
void add_gaussian_noise(Image& image, float std_levels, uint64_t seed);
void gaussian_blur(Image& image, float sigma);

// Model input: optional inversion (255 - x, so white background becomes 0 and padding is
// neutral, docs/panda_and_openslide.md section 7), scaling to [0, 1], then optional per-channel (x - mean) / std.
struct NormalizeConfig {
  bool invert = true;
  std::vector<float> mean;  // empty: no mean subtraction; else one value per channel
  std::vector<float> std;   // empty: no division; else one value per channel

  static NormalizeConfig imagenet(bool invert = false);  // mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
};

// Writes height * width * channels float32 values, [H, W, C] (one image of an NHWC batch),
// starting at `out`.
void normalize_into(const Image& image, const NormalizeConfig& config, float* out);

}  // namespace sg::data
