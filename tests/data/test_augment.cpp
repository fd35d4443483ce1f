// Augmentation: seeded (same seed, same bytes on any thread), the dihedral ops are a group, "off"
// is the identity, each colour op does what it says, stain deconvolution matches scikit-image,
// and normalisation gives the exact values.
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "data/augment.h"
#include "data/npy.h"
#include "data/opencv_view.h"
#include "data/stain_jitter.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

Image random_image(sg::testing::Rng& rng, int width, int height, int channels = 3) {
  Image image(width, height, channels);
  for (auto& v : image.pixels) v = static_cast<uint8_t>(rng.integer(0, 255));
  return image;
}

// A config with every operation on, always, so every code path runs.
AugmentConfig everything_on() {
  AugmentConfig c;
  c.tile = {1.0f, 1.0f, 1.0f, 1.0f};
  c.mosaic = {1.0f, 1.0f, 1.0f, 1.0f};
  c.affine_probability = c.hue_probability = c.saturation_probability = 1.0f;
  c.brightness_probability = c.contrast_probability = c.stain_probability = 1.0f;
  c.noise_probability = c.blur_probability = 1.0f;
  c.noise_std = {2.0f, 4.0f};
  return c;
}

double variance(const Image& image) {
  double sum = 0.0, sum2 = 0.0;
  for (uint8_t v : image.pixels) {
    sum += v;
    sum2 += double(v) * v;
  }
  const double n = static_cast<double>(image.pixels.size());
  return sum2 / n - (sum / n) * (sum / n);
}

TEST(Augment, SameSeedSameBytesOnAnyThread) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 48, 48);
  const AugmentConfig config = AugmentConfig();  // the default recipe: some ops on, some off per seed
  for (uint64_t seed : {1ull, 2ull, 77ull, 123456789ull}) {
    Image here = input;
    augment_tile(here, config, seed);
    Image there = input;
    std::thread worker([&] { augment_tile(there, config, seed); });
    worker.join();
    EXPECT_EQ(here.pixels, there.pixels) << "seed " << seed;
    EXPECT_EQ(here.width, there.width);
  }
  Image a = input, b = input;
  augment_tile(a, everything_on(), 5);
  augment_tile(b, everything_on(), 5);
  EXPECT_EQ(a.pixels, b.pixels);
}

TEST(Augment, DifferentSeedsDiffer) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 32, 32);
  Image a = input, b = input;
  augment_tile(a, everything_on(), 1);
  augment_tile(b, everything_on(), 2);
  EXPECT_NE(a.pixels, b.pixels);
  // With the default recipe, ten seeds give more than one distinct result.
  int distinct_from_first = 0;
  Image first = input;
  augment_tile(first, AugmentConfig(), 100);
  for (uint64_t seed = 101; seed < 110; ++seed) {
    Image other = input;
    augment_tile(other, AugmentConfig(), seed);
    distinct_from_first += other.pixels != first.pixels;
  }
  EXPECT_GT(distinct_from_first, 0);
}

TEST(Augment, DihedralOpsAreAGroup) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 7, 5);  // not square: rot90 and transpose swap the sides
  Image image = input;
  flip_horizontal(image);
  EXPECT_NE(image.pixels, input.pixels);
  EXPECT_EQ(image.at(0, 0)[0], input.at(6, 0)[0]);
  flip_horizontal(image);
  EXPECT_EQ(image.pixels, input.pixels);

  flip_vertical(image);
  EXPECT_EQ(image.at(2, 0)[1], input.at(2, 4)[1]);
  flip_vertical(image);
  EXPECT_EQ(image.pixels, input.pixels);

  transpose(image);
  EXPECT_EQ(image.width, 5);
  EXPECT_EQ(image.height, 7);
  EXPECT_EQ(image.at(4, 6)[2], input.at(6, 4)[2]);
  transpose(image);
  EXPECT_EQ(image.width, 7);
  EXPECT_EQ(image.pixels, input.pixels);

  for (int turn = 1; turn <= 4; ++turn) {
    rotate90(image, 1);
    if (turn < 4) {
      EXPECT_NE(image.pixels, input.pixels) << turn;
    }
  }
  EXPECT_EQ(image.width, 7);
  EXPECT_EQ(image.pixels, input.pixels);
  // Counter-clockwise: the top-right corner comes to the top-left.
  rotate90(image, 1);
  EXPECT_EQ(image.at(0, 0)[0], input.at(6, 0)[0]);
  rotate90(image, -1);
  EXPECT_EQ(image.pixels, input.pixels);
}

// out(x, y) == in(map(x, y)) for every pixel and channel.
template <class Map>
::testing::AssertionResult maps_pixels(const Image& in, const Image& out, Map map) {
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const auto [sx, sy] = map(x, y);
      for (int c = 0; c < out.channels; ++c)
        if (out.at(x, y)[c] != in.at(sx, sy)[c])
          return ::testing::AssertionFailure() << "pixel " << x << "," << y << " channel " << c;
    }
  return ::testing::AssertionSuccess();
}

TEST(Augment, DihedralOpsMoveEveryPixel) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image in = random_image(rng, 9, 6, 3);
  const int w = in.width, h = in.height;
  Image out = in;
  flip_horizontal(out);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{w - 1 - x, y}; }));
  out = in;
  flip_vertical(out);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{x, h - 1 - y}; }));
  out = in;
  transpose(out);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{y, x}; }));
  out = in;
  rotate90(out, 1);  // counter-clockwise: out is h wide, w high; out(x, y) = in(w - 1 - y, x)
  ASSERT_EQ(out.width, h);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{w - 1 - y, x}; }));
  out = in;
  rotate90(out, 2);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{w - 1 - x, h - 1 - y}; }));
  out = in;
  rotate90(out, 3);
  EXPECT_TRUE(maps_pixels(in, out, [&](int x, int y) { return std::pair{y, h - 1 - x}; }));
  Image mask = random_image(rng, 5, 4, 1);  // one channel works too
  const Image mask_in = mask;
  flip_horizontal(mask);
  EXPECT_TRUE(maps_pixels(mask_in, mask, [&](int x, int y) { return std::pair{4 - x, y}; }));
}

TEST(Augment, AllOffIsIdentity) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 40, 40);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Image tile = input;
    augment_tile(tile, AugmentConfig::none(), seed);
    EXPECT_EQ(tile.pixels, input.pixels) << seed;
    augment_mosaic(tile, AugmentConfig::none(), seed);
    EXPECT_EQ(tile.pixels, input.pixels) << seed;
  }
}

TEST(Augment, ZeroRotationUnitScaleIsIdentity) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 33, 20);
  Image image = input;
  rotate_and_scale(image, 0.0f, 1.0f);
  EXPECT_EQ(image.pixels, input.pixels);
  AugmentConfig config = AugmentConfig::none();
  config.affine_probability = 1.0f;
  config.rotation_degrees = {0.0f, 0.0f};
  config.scale = {1.0f, 1.0f};
  augment_tile(image, config, 9);
  EXPECT_EQ(image.pixels, input.pixels);
  // A real rotation moves pixels and fills the corners with white.
  rotate_and_scale(image, 30.0f, 1.0f);
  EXPECT_NE(image.pixels, input.pixels);
  EXPECT_EQ(image.at(0, 0)[0], 255);
  EXPECT_EQ(image.at(32, 19)[2], 255);
}

TEST(Augment, MaskFollowsTileGeometry) {
  // A tile whose pixel values are a label image: the mask augmented with the same seed must
  // match the tile after geometric ops (nearest-neighbour for the mask, so compare away from the
  // interpolated labels: use a constant-label block).
  Image tile(16, 16, 3, 255), mask(16, 16, 1, 0);
  for (int y = 2; y < 6; ++y)
    for (int x = 9; x < 14; ++x) {
      tile.at(x, y)[0] = tile.at(x, y)[1] = tile.at(x, y)[2] = 0;
      mask.at(x, y)[0] = 1;
    }
  AugmentConfig config = AugmentConfig::none();
  config.tile = {0.5f, 0.5f, 0.5f, 0.5f};
  for (uint64_t seed = 0; seed < 16; ++seed) {
    Image t = tile, m = mask;
    augment_tile(t, config, seed);
    augment_tile_mask(m, config, seed);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) ASSERT_EQ(t.at(x, y)[0] == 0, m.at(x, y)[0] == 1) << seed << " " << x << "," << y;
  }
}

TEST(Augment, StainJitterIdentityRoundTrip) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 64, 64);
  Image image = input;
  jitter_stains(image, {1.0f, 1.0f}, {0.0f, 0.0f});
  int worst = 0;
  for (size_t i = 0; i < input.pixels.size(); ++i) worst = std::max(worst, std::abs(image.pixels[i] - input.pixels[i]));
  EXPECT_LE(worst, 1);
  // And a real jitter changes a tissue colour: more haematoxylin darkens it.
  Image pink(1, 1, 3);
  pink.pixels = {200, 120, 160};
  jitter_stains(pink, {1.5f, 1.0f}, {0.0f, 0.0f});
  EXPECT_LT(pink.pixels[0], 200);
}

TEST(Augment, StainJitterEqualsDeconvolveJitterReconvolve) {
  // jitter_stains folds the three steps into tables; do them pixel by pixel and compare.
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 32, 32);
  const std::array<float, 2> alpha{rng.uniform(0.7f, 1.3f), rng.uniform(0.7f, 1.3f)};
  const std::array<float, 2> beta{rng.uniform(-0.02f, 0.02f), rng.uniform(-0.02f, 0.02f)};
  Image fast = input;
  jitter_stains(fast, alpha, beta);
  int off_by_one = 0;
  for (size_t i = 0; i < input.pixels.size(); i += 3) {
    Stains s = rgb_to_hed(input.pixels[i], input.pixels[i + 1], input.pixels[i + 2]);
    s[0] = alpha[0] * s[0] + beta[0];
    s[1] = alpha[1] * s[1] + beta[1];
    const std::array<double, 3> rgb = hed_to_rgb(s);
    for (int k = 0; k < 3; ++k) {
      const double expected = rgb[k] * 255.0;
      ASSERT_NEAR(fast.pixels[i + k], expected, 0.5 + 1e-6) << "pixel " << i / 3 << " channel " << k;
      off_by_one += fast.pixels[i + k] != std::lround(expected);
    }
  }
  EXPECT_LE(off_by_one, 3);  // only exact rounding ties may go either way
}

TEST(Augment, StainDeconvolutionMatchesScikitImage) {
  const std::string dir = std::string(SG_TEST_DATA_DIR) + "/augment/";
  const Tensor rgb = read_npy(dir + "stain_rgb.npy");
  const Tensor hed = read_npy(dir + "stain_hed.npy");  // float64 on disk, f32 here
  const Tensor params = read_npy(dir + "stain_params.npy");
  const Tensor jittered = read_npy(dir + "stain_jittered.npy");
  ASSERT_EQ(rgb.shape(), (Shape{1, 24, 3}));
  const int n = 24;
  const uint8_t* px = rgb.data_as<uint8_t>();
  const float* expected_hed = hed.data_as<float>();
  const float* p = params.data_as<float>();
  const float* expected_jitter = jittered.data_as<float>();

  int compared_jitter = 0;
  for (int i = 0; i < n; ++i) {
    const uint8_t* c = px + 3 * i;
    SCOPED_TRACE(::testing::Message() << "colour " << int(c[0]) << "," << int(c[1]) << "," << int(c[2]));
    const Stains s = rgb_to_hed(c[0], c[1], c[2]);
    bool clamped = false;
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(std::max(s[k], 0.0), expected_hed[3 * i + k], 1e-6) << k;  // skimage clamps at 0
      clamped |= s[k] < 0.0;
    }
    // hed2rgb of skimage's (clamped) concentrations.
    const std::array<double, 3> back =
        hed_to_rgb({expected_hed[3 * i], expected_hed[3 * i + 1], expected_hed[3 * i + 2]});
    if (!clamped) {
      for (int k = 0; k < 3; ++k) EXPECT_NEAR(back[k] * 255.0, c[k], 1e-3) << k;
    }
    // The jitter agrees with skimage wherever skimage did not clamp a concentration.
    if (clamped) continue;
    ++compared_jitter;
    Image one(1, 1, 3);
    one.pixels = {c[0], c[1], c[2]};
    jitter_stains(one, {p[0], p[1]}, {p[2], p[3]});
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(one.pixels[k], expected_jitter[3 * i + k] * 255.0, 0.5 + 1e-3) << k;
  }
  EXPECT_GE(compared_jitter, 8);
}

TEST(Augment, NoiseHasZeroMeanAndTheAskedStd) {
  Image image(256, 256, 3, 128);
  const float asked = 10.0f;
  add_gaussian_noise(image, asked, 42);
  double sum = 0.0, sum2 = 0.0;
  size_t within_one_std = 0;
  for (uint8_t v : image.pixels) {
    const double d = double(v) - 128.0;
    sum += d;
    sum2 += d * d;
    within_one_std += std::abs(d) <= asked;
  }
  const double n = static_cast<double>(image.pixels.size());
  const double mean = sum / n;
  const double std = std::sqrt(sum2 / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.15);  // ~196k samples: standard error of the mean 0.023
  EXPECT_NEAR(std, std::sqrt(asked * asked + 1.0 / 12.0), 0.15);  // rounding adds 1/12 variance
  // Normal, not just the right moments: P(|round(10 z)| <= 10) = P(|z| < 1.05) = 0.7063.
  EXPECT_NEAR(within_one_std / n, 0.7063, 0.01);
  // Through the config, std fixed by a one-point range.
  Image flat(128, 128, 3, 128);
  AugmentConfig config = AugmentConfig::none();
  config.noise_probability = 1.0f;
  config.noise_std = {3.0f, 3.0f};
  augment_tile(flat, config, 7);
  EXPECT_NEAR(std::sqrt(variance(flat)), std::sqrt(9.0 + 1.0 / 12.0), 0.1);
}

TEST(Augment, HueShiftMovesRedByTheAskedAmount) {
  for (float shift : {30.0f, -40.0f, 120.0f}) {
    Image red(8, 8, 3);
    for (int i = 0; i < 64; ++i) red.pixels[3 * i] = 255;
    AugmentConfig config = AugmentConfig::none();
    config.hue_probability = 1.0f;
    config.hue_degrees = {shift, shift};
    augment_tile(red, config, 3);
    cv::Mat hsv;
    as_mat(red).convertTo(hsv, CV_32FC3, 1.0 / 255.0);
    cv::cvtColor(hsv, hsv, cv::COLOR_RGB2HSV);
    const float expected = shift < 0 ? shift + 360.0f : shift;
    const cv::Vec3f h = hsv.at<cv::Vec3f>(4, 4);
    EXPECT_NEAR(h[0], expected, 0.5f) << shift;  // red is hue 0
    EXPECT_NEAR(h[1], 1.0f, 1e-6f);
    EXPECT_NEAR(h[2], 1.0f, 1e-6f);
  }
  // Saturation 0 makes grey.
  Image red(2, 2, 3);
  for (int i = 0; i < 4; ++i) red.pixels[3 * i] = 200;
  scale_saturation(red, 0.0f);
  EXPECT_EQ(red.pixels[1], 200);
  EXPECT_EQ(red.pixels[2], 200);
}

TEST(Augment, BrightnessAndContrast) {
  Image image(2, 1, 3);
  image.pixels = {100, 100, 100, 200, 200, 200};  // mean 150
  Image brighter = image;
  adjust_brightness_contrast(brighter, 0.1f, 1.0f);  // + 25.5 levels
  EXPECT_EQ(brighter.pixels[0], 126);
  EXPECT_EQ(brighter.pixels[3], 226);
  Image contrast = image;
  adjust_brightness_contrast(contrast, 0.0f, 0.5f);  // halfway to the mean
  EXPECT_EQ(contrast.pixels[0], 125);
  EXPECT_EQ(contrast.pixels[5], 175);
}

TEST(Augment, BlurReducesVariance) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  Image image = random_image(rng, 64, 64);
  const double before = variance(image);
  gaussian_blur(image, 1.5f);
  EXPECT_LT(variance(image), before * 0.5);
}

TEST(Augment, MosaicOpsAreSeeded) {
  sg::testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image input = random_image(rng, 12, 12);
  AugmentConfig config = AugmentConfig::none();
  config.mosaic = {0.5f, 0.5f, 0.5f, 0.5f};
  int changed = 0;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    Image a = input, b = input;
    augment_mosaic(a, config, seed);
    augment_mosaic(b, config, seed);
    EXPECT_EQ(a.pixels, b.pixels);
    changed += a.pixels != input.pixels;
  }
  EXPECT_GT(changed, 8);  // each seed keeps the input with probability 1/16 or so
}

TEST(Augment, NormalizationValues) {
  Image image(2, 1, 3);
  image.pixels = {0, 255, 51, 102, 204, 1};
  std::vector<float> out(6, -99.0f);
  NormalizeConfig plain;
  plain.invert = false;
  normalize_into(image, plain, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 51.0f / 255.0f);
  NormalizeConfig inverted;  // the default inverts
  normalize_into(image, inverted, out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[4], 51.0f / 255.0f);
  const NormalizeConfig imagenet = NormalizeConfig::imagenet();
  normalize_into(image, imagenet, out.data());
  EXPECT_FLOAT_EQ(out[0], (0.0f - 0.485f) / 0.229f);
  EXPECT_FLOAT_EQ(out[1], (1.0f - 0.456f) / 0.224f);
  EXPECT_FLOAT_EQ(out[5], (1.0f / 255.0f - 0.406f) / 0.225f);
  NormalizeConfig wrong;
  wrong.mean = {0.5f};
  EXPECT_THROW(normalize_into(image, wrong, out.data()), Error);
}

}  // namespace
}  // namespace sg::data
