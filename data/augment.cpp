#include "data/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <opencv2/imgproc.hpp>

#include "core/philox.h"
#include "data/opencv_view.h"
#include "data/stain_jitter.h"

namespace sg::data {
namespace {

// One Philox stream per random decision; the values are part of the seed -> bytes contract,
// so never renumber them (append new ones).
enum Stream : uint64_t {
  kTileFlipH = 1,
  kTileFlipV,
  kTileTranspose,
  kTileRot90,
  kAffine,
  kStain,
  kHue,
  kSaturation,
  kBrightness,
  kContrast,
  kBlur,
  kNoise,
  kNoisePixels,
  kMosaicFlipH,
  kMosaicFlipV,
  kMosaicTranspose,
  kMosaicRot90,
};

// Draw `index` of `stream`: uniform in [0, 1).
float uniform(uint64_t seed, Stream stream, uint64_t index = 0) { return philox_uniform(seed, stream, index); }

// Draw 0 of a stream decides whether the op happens; later draws give its parameters.
bool happens(uint64_t seed, Stream stream, float probability) { return uniform(seed, stream, 0) < probability; }

float in_range(uint64_t seed, Stream stream, uint64_t index, const UniformRange& range) {
  SG_CHECK(range.min <= range.max, "AugmentConfig: empty range [", range.min, ", ", range.max, "]");
  return range.min + uniform(seed, stream, index) * (range.max - range.min);
}

void replace_pixels(Image& image, const cv::Mat& result) { image = to_image(result); }

struct DihedralStreams {
  Stream flip_h, flip_v, transpose, rot90;
};

void apply_dihedral(Image& image, const DihedralConfig& config, uint64_t seed, const DihedralStreams& streams) {
  if (happens(seed, streams.flip_h, config.flip_horizontal)) flip_horizontal(image);
  if (happens(seed, streams.flip_v, config.flip_vertical)) flip_vertical(image);
  if (happens(seed, streams.transpose, config.transpose)) transpose(image);
  if (happens(seed, streams.rot90, config.rot90)) {
    const int turns = 1 + std::min(2, static_cast<int>(uniform(seed, streams.rot90, 1) * 3.0f));
    rotate90(image, turns);
  }
}

constexpr DihedralStreams kTileStreams{kTileFlipH, kTileFlipV, kTileTranspose, kTileRot90};
constexpr DihedralStreams kMosaicStreams{kMosaicFlipH, kMosaicFlipV, kMosaicTranspose, kMosaicRot90};

void check_rgb(const Image& image, const char* op) {
  SG_CHECK(image.channels == 3, op, ": expected an RGB image (3 channels), got ", image.channels, " channels");
}

// Hue (degrees) and saturation (factor) through OpenCV's float HSV: H in [0, 360), S and V in [0, 1].
void adjust_hsv(Image& rgb, float hue_degrees, float saturation_factor) {
  check_rgb(rgb, "adjust_hsv");
  cv::Mat hsv;
  as_mat(rgb).convertTo(hsv, CV_32FC3, 1.0 / 255.0);
  cv::cvtColor(hsv, hsv, cv::COLOR_RGB2HSV);
  for (int y = 0; y < hsv.rows; ++y) {
    auto* p = hsv.ptr<cv::Vec3f>(y);
    for (int x = 0; x < hsv.cols; ++x) {
      float h = std::fmod(p[x][0] + hue_degrees, 360.0f);
      if (h < 0.0f) h += 360.0f;
      p[x][0] = h;
      p[x][1] = std::clamp(p[x][1] * saturation_factor, 0.0f, 1.0f);
    }
  }
  cv::cvtColor(hsv, hsv, cv::COLOR_HSV2RGB);
  cv::Mat out = as_mat(rgb);
  hsv.convertTo(out, CV_8UC3, 255.0);  // rounds and saturates, into the image's own pixels
}

void apply_affine(Image& image, const AugmentConfig& config, uint64_t seed, bool nearest, uint8_t border) {
  if (!happens(seed, kAffine, config.affine_probability)) return;
  const float degrees = in_range(seed, kAffine, 1, config.rotation_degrees);
  const float scale = in_range(seed, kAffine, 2, config.scale);
  rotate_and_scale(image, degrees, scale, nearest, border);
}

// The standard normal quantile at p in (0, 1): Acklam's rational approximation (relative error
// 1.2e-9) refined by one Halley step against erfc, which brings it to double precision.
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  constexpr double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2.0 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (p <= 1.0 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  } else {
    const double q = std::sqrt(-2.0 * std::log(1.0 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  const double e = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
  const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(x * x / 2.0);
  return x - u / (1.0 + x * u / 2.0);
}

// 65536 equally likely standard normal values: the quantiles at (i + 0.5) / 65536.
const std::vector<float>& normal_quantiles() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(normal_quantile((i + 0.5) / 65536.0));
    return t;
  }();
  return table;
}

}  // namespace

AugmentConfig AugmentConfig::none() {
  AugmentConfig c;
  c.tile = DihedralConfig{};
  c.mosaic = DihedralConfig{};
  c.affine_probability = 0.0f;
  c.hue_probability = 0.0f;
  c.saturation_probability = 0.0f;
  c.brightness_probability = 0.0f;
  c.contrast_probability = 0.0f;
  c.stain_probability = 0.0f;
  c.noise_probability = 0.0f;
  c.blur_probability = 0.0f;
  return c;
}

void flip_horizontal(Image& image) {
  cv::Mat m = as_mat(image);
  cv::flip(m, m, 1);
}

void flip_vertical(Image& image) {
  cv::Mat m = as_mat(image);
  cv::flip(m, m, 0);
}

void transpose(Image& image) {
  cv::Mat result;
  cv::transpose(as_mat(image), result);
  replace_pixels(image, result);
}

void rotate90(Image& image, int quarter_turns) {
  const int turns = ((quarter_turns % 4) + 4) % 4;
  if (turns == 0) return;
  static constexpr cv::RotateFlags kFlags[] = {cv::ROTATE_90_COUNTERCLOCKWISE, cv::ROTATE_180,
                                               cv::ROTATE_90_CLOCKWISE};
  cv::Mat result;
  cv::rotate(as_mat(image), result, kFlags[turns - 1]);
  replace_pixels(image, result);
}

void rotate_and_scale(Image& image, float degrees, float scale, bool nearest, uint8_t border) {
  SG_CHECK(scale > 0.0f, "rotate_and_scale: scale must be positive, got ", scale);
  SG_CHECK(image.channels <= 4, "rotate_and_scale: at most 4 channels, got ", image.channels);
  // Centre of the pixel grid, so rotation 0 and scale 1 is the identity matrix exactly.
  const cv::Point2f centre((image.width - 1) * 0.5f, (image.height - 1) * 0.5f);
  const cv::Mat matrix = cv::getRotationMatrix2D(centre, degrees, scale);
  cv::Mat result;
  cv::warpAffine(as_mat(image), result, matrix, cv::Size(image.width, image.height),
                 nearest ? cv::INTER_NEAREST : cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(border));
  replace_pixels(image, result);
}

void shift_hue(Image& rgb, float degrees) { adjust_hsv(rgb, degrees, 1.0f); }

void scale_saturation(Image& rgb, float factor) { adjust_hsv(rgb, 0.0f, factor); }

void adjust_brightness_contrast(Image& rgb, float brightness_shift, float contrast_factor) {
  cv::Mat m = as_mat(rgb);
  const cv::Scalar channel_means = cv::mean(m);
  double mean = 0.0;
  for (int c = 0; c < rgb.channels; ++c) mean += channel_means[c];
  mean /= rgb.channels;
  // x -> (x - mean) * contrast + mean + shift * 255, rounded and saturated.
  m.convertTo(m, m.type(), contrast_factor, mean * (1.0 - contrast_factor) + brightness_shift * 255.0);
}

void add_gaussian_noise(Image& image, float std_levels, uint64_t seed) {
  // Each Philox block of four 32-bit words gives eight standard normals: every 16 bits index the
  // table of normal quantiles (tails cut at +-4.17 sigma, which 8-bit noise never reaches anyway).
  const std::vector<float>& quantiles = normal_quantiles();
  const size_t n = image.pixels.size();
  uint8_t* p = image.pixels.data();
  for (size_t block = 0; block * 8 < n; ++block) {
    const PhiloxOutput bits = philox_block(seed, kNoisePixels, block);
    const size_t count = std::min<size_t>(8, n - block * 8);
    uint8_t* q = p + block * 8;
    for (size_t k = 0; k < count; ++k) {
      const uint32_t index = (bits.v[k / 2] >> (16 * (k % 2))) & 0xFFFFu;
      const float v = std::nearbyint(static_cast<float>(q[k]) + std_levels * quantiles[index]);
      q[k] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  }
}

void gaussian_blur(Image& image, float sigma) {
  SG_CHECK(sigma > 0.0f, "gaussian_blur: sigma must be positive, got ", sigma);
  cv::Mat m = as_mat(image);
  cv::GaussianBlur(m, m, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
}

void augment_tile(Image& tile, const AugmentConfig& config, uint64_t seed) {
  apply_dihedral(tile, config.tile, seed, kTileStreams);
  apply_affine(tile, config, seed, /*nearest=*/false, /*border=*/255);
  if (happens(seed, kStain, config.stain_probability)) {
    const std::array<float, 2> alpha{in_range(seed, kStain, 1, config.stain_alpha),
                                     in_range(seed, kStain, 2, config.stain_alpha)};
    const std::array<float, 2> beta{in_range(seed, kStain, 3, config.stain_beta),
                                    in_range(seed, kStain, 4, config.stain_beta)};
    jitter_stains(tile, alpha, beta);
  }
  const bool hue = happens(seed, kHue, config.hue_probability);
  const bool saturation = happens(seed, kSaturation, config.saturation_probability);
  if (hue || saturation) {
    adjust_hsv(tile, hue ? in_range(seed, kHue, 1, config.hue_degrees) : 0.0f,
               saturation ? in_range(seed, kSaturation, 1, config.saturation_factor) : 1.0f);
  }
  const bool brightness = happens(seed, kBrightness, config.brightness_probability);
  const bool contrast = happens(seed, kContrast, config.contrast_probability);
  if (brightness || contrast) {
    adjust_brightness_contrast(tile, brightness ? in_range(seed, kBrightness, 1, config.brightness_shift) : 0.0f,
                               contrast ? in_range(seed, kContrast, 1, config.contrast_factor) : 1.0f);
  }
  if (happens(seed, kBlur, config.blur_probability)) gaussian_blur(tile, in_range(seed, kBlur, 1, config.blur_sigma));
  if (happens(seed, kNoise, config.noise_probability)) {
    add_gaussian_noise(tile, in_range(seed, kNoise, 1, config.noise_std), seed);
  }
}

void augment_tile_mask(Image& mask, const AugmentConfig& config, uint64_t seed) {
  apply_dihedral(mask, config.tile, seed, kTileStreams);
  apply_affine(mask, config, seed, /*nearest=*/true, /*border=*/0);
}

void augment_mosaic(Image& mosaic, const AugmentConfig& config, uint64_t seed) {
  apply_dihedral(mosaic, config.mosaic, seed, kMosaicStreams);
}

NormalizeConfig NormalizeConfig::imagenet(bool invert) {
  NormalizeConfig c;
  c.invert = invert;
  c.mean = {0.485f, 0.456f, 0.406f};
  c.std = {0.229f, 0.224f, 0.225f};
  return c;
}

void normalize_into(const Image& image, const NormalizeConfig& config, float* out) {
  const int channels = image.channels;
  SG_CHECK(config.mean.empty() || static_cast<int>(config.mean.size()) == channels, "normalize_into: ",
           config.mean.size(), " mean values for an image of ", channels, " channels");
  SG_CHECK(config.std.empty() || static_cast<int>(config.std.size()) == channels, "normalize_into: ",
           config.std.size(), " std values for an image of ", channels, " channels");
  for (float s : config.std) SG_CHECK(s > 0.0f, "normalize_into: std must be positive, got ", s);
  SG_CHECK(out != nullptr || image.pixels.empty(), "normalize_into: null output buffer");
  // One table of 256 floats per channel: [channel][level].
  std::vector<float> table(static_cast<size_t>(channels) * 256);
  for (int c = 0; c < channels; ++c) {
    const float mean = config.mean.empty() ? 0.0f : config.mean[c];
    const float std = config.std.empty() ? 1.0f : config.std[c];
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(config.invert ? 255 - v : v) / 255.0f;
      table[static_cast<size_t>(c) * 256 + v] = (x - mean) / std;
    }
  }
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  const uint8_t* p = image.pixels.data();
  if (channels == 3) {  // the common case, unrolled
    const float *t0 = table.data(), *t1 = t0 + 256, *t2 = t1 + 256;
    for (size_t i = 0; i < pixels; ++i, p += 3, out += 3) {
      out[0] = t0[p[0]];
      out[1] = t1[p[1]];
      out[2] = t2[p[2]];
    }
    return;
  }
  for (size_t i = 0; i < pixels; ++i)
    for (int c = 0; c < channels; ++c, ++p, ++out) *out = table[static_cast<size_t>(c) * 256 + *p];
}

}  // namespace sg::data
