// Tissue detection: a pink blob drawn on white is found with about its drawn area, glass and
// pure white are not tissue, pen strokes are left out, and region fractions (level-0
// coordinates, fractional mask pixels) match a brute-force count.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "data/opencv_view.h"
#include "data/tissue_detection.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

// White glass with slight grey noise (low saturation), as a scanner gives it.
Image glass(testing::Rng& rng, int width, int height) {
  Image image(width, height, 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const uint8_t grey = uint8_t(rng.integer(236, 250));
      for (int c = 0; c < 3; ++c) image.at(x, y)[c] = uint8_t(std::min<int64_t>(255, grey + rng.integer(0, 2)));
    }
  return image;
}

// Draws a filled ellipse of H&E-like pink with some texture; returns the count of its pixels.
int64_t draw_pink_blob(testing::Rng& rng, Image& image, cv::Point centre, cv::Size axes, double angle) {
  cv::Mat drawn = cv::Mat::zeros(image.height, image.width, CV_8U);
  cv::ellipse(drawn, centre, axes, angle, 0, 360, cv::Scalar(255), cv::FILLED);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      if (drawn.at<uint8_t>(y, x)) {
        const bool nucleus = rng.integer(0, 9) == 0;  // purple specks in pink stroma
        uint8_t* p = image.at(x, y);
        p[0] = uint8_t(nucleus ? 120 : 225 + rng.integer(-8, 8));
        p[1] = uint8_t(nucleus ? 80 : 140 + rng.integer(-8, 8));
        p[2] = uint8_t(nucleus ? 170 : 190 + rng.integer(-8, 8));
      }
  return cv::countNonZero(drawn);
}

void draw_stroke(Image& image, cv::Point a, cv::Point b, cv::Scalar rgb, int thickness) {
  cv::Mat mat = as_mat(image);
  cv::line(mat, a, b, rgb, thickness);
}

TEST(TissueDetection, FindsAPinkBlobWithItsDrawnArea) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Image level = glass(rng, 400, 300);
  const int64_t drawn = draw_pink_blob(rng, level, {200, 150}, {120, 60}, 30);
  const double expected = double(drawn) / (400.0 * 300.0);
  const TissueMask mask = detect_tissue(level, 16.0);
  EXPECT_NEAR(mask.overall_fraction(), expected, 0.03 * expected) << "threshold " << mask.saturation_threshold();
  EXPECT_GE(mask.saturation_threshold(), TissueOptions{}.min_saturation);
  // The whole level in level-0 coordinates gives the same fraction.
  EXPECT_NEAR(mask.tissue_fraction(0, 0, 400 * 16, 300 * 16), mask.overall_fraction(), 1e-12);
  // A square in the blob's middle is all tissue, a corner is glass.
  EXPECT_NEAR(mask.tissue_fraction(190 * 16, 140 * 16, 20 * 16, 20 * 16), 1.0, 1e-12);
  EXPECT_NEAR(mask.tissue_fraction(0, 0, 40 * 16, 40 * 16), 0.0, 1e-12);
}

// Glass, pale pink stroma and a large dark purple region: Otsu alone splits purple from
// pink + glass (a threshold near 100) and loses the stroma; the ceiling keeps it.
TEST(TissueDetection, PalePinkStromaBesideDarkEpitheliumIsTissue) {
  Image level(400, 200, 3, 245);
  cv::Mat mat = as_mat(level);
  cv::rectangle(mat, cv::Rect(40, 40, 160, 120), cv::Scalar(232, 176, 212), cv::FILLED);  // pink stroma (S ~ 60)
  cv::rectangle(mat, cv::Rect(200, 40, 160, 120), cv::Scalar(90, 40, 130), cv::FILLED);   // purple sheet (S ~ 175)
  const TissueMask mask = detect_tissue(level, 4.0);
  EXPECT_LE(mask.saturation_threshold(), 45);
  EXPECT_GT(mask.tissue_fraction(4 * 60, 4 * 60, 4 * 120, 4 * 80), 0.95);   // inside the stroma
  EXPECT_GT(mask.tissue_fraction(4 * 220, 4 * 60, 4 * 120, 4 * 80), 0.95);  // inside the sheet
  EXPECT_LT(mask.tissue_fraction(0, 4 * 170, 4 * 400, 4 * 30), 0.01);       // glass below
  EXPECT_NEAR(mask.overall_fraction(), 320.0 * 120 / (400.0 * 200), 0.03);
}

TEST(TissueDetection, WhiteAndGlassAreNotTissue) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const TissueMask white = detect_tissue(Image(200, 100, 3, 255), 4.0);
  EXPECT_EQ(white.overall_fraction(), 0.0);
  EXPECT_EQ(white.saturation_threshold(), TissueOptions{}.min_saturation);  // Otsu's split of a constant image is 0
  const TissueMask noisy = detect_tissue(glass(rng, 200, 100), 4.0);
  EXPECT_LT(noisy.overall_fraction(), 0.001);
  // Without the floor (and the clean-up that hides it), Otsu splits the glass's own noise and
  // calls part of it tissue.
  TissueOptions no_floor;
  no_floor.min_saturation = 0;
  no_floor.median_kernel = 1;
  no_floor.open_kernel = 0;
  no_floor.min_component_pixels = 0;
  EXPECT_GT(detect_tissue(glass(rng, 200, 100), 4.0, no_floor).overall_fraction(), 0.01);
}

TEST(TissueDetection, LeavesOutPenMarks) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Image level = glass(rng, 400, 300);
  const int64_t drawn = draw_pink_blob(rng, level, {150, 150}, {80, 50}, 0);
  draw_stroke(level, {280, 20}, {380, 280}, cv::Scalar(20, 140, 60), 8);   // green ink
  draw_stroke(level, {250, 280}, {390, 200}, cv::Scalar(30, 60, 170), 8);  // blue ink
  draw_stroke(level, {20, 20}, {250, 30}, cv::Scalar(25, 25, 30), 6);      // black ink
  const double expected = double(drawn) / (400.0 * 300.0);
  const TissueMask mask = detect_tissue(level, 16.0);
  EXPECT_NEAR(mask.overall_fraction(), expected, 0.05 * expected);
  EXPECT_NEAR(mask.tissue_fraction(300 * 16, 100 * 16, 60 * 16, 100 * 16), 0.0, 0.01);  // the green stroke's middle
  TissueOptions keep_ink;
  keep_ink.exclude_pen = false;
  EXPECT_GT(detect_tissue(level, 16.0, keep_ink).overall_fraction(), expected * 1.1);
}

// Tissue area of [x0, x0+w) x [y0, y0+h) (level-0 pixels) counted mask pixel by mask pixel.
double brute_force_fraction(const Image& mask, double ds, double x0, double y0, double w, double h) {
  double area = 0;
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x) {
      if (!mask.at(x, y)[0]) continue;
      const double ox = std::max(0.0, std::min(x0 + w, (x + 1) * ds) - std::max(x0, x * ds));
      const double oy = std::max(0.0, std::min(y0 + h, (y + 1) * ds) - std::max(y0, y * ds));
      area += ox * oy;
    }
  return area / (w * h);
}

TEST(TissueDetection, RegionFractionMatchesBruteForce) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (int trial = 0; trial < 5; ++trial) {
    Image bits(int(rng.integer(1, 40)), int(rng.integer(1, 40)), 1);
    for (uint8_t& v : bits.pixels) v = rng.integer(0, 2) ? 255 : 0;
    const double ds = trial == 0 ? 1.0 : (trial == 1 ? 4.0005 : double(rng.integer(2, 16)));
    const TissueMask mask(bits, ds);
    int64_t count = 0;
    for (uint8_t v : bits.pixels) count += v != 0;
    EXPECT_NEAR(mask.overall_fraction(), double(count) / double(bits.pixels.size()), 1e-12);
    for (int q = 0; q < 200; ++q) {
      // Regions anywhere, partly or wholly outside the level too.
      const int64_t extent_w = int64_t(bits.width * ds), extent_h = int64_t(bits.height * ds);
      const int64_t x0 = rng.integer(-extent_w / 2, extent_w), y0 = rng.integer(-extent_h / 2, extent_h);
      const int64_t w = rng.integer(1, extent_w + 5), h = rng.integer(1, extent_h + 5);
      const double want = brute_force_fraction(bits, ds, double(x0), double(y0), double(w), double(h));
      ASSERT_NEAR(mask.tissue_fraction(x0, y0, w, h), want, 1e-9)
          << bits.width << "x" << bits.height << " ds " << ds << " region " << x0 << "," << y0 << " " << w << "x" << h;
    }
  }
  EXPECT_THROW(TissueMask(Image(4, 4, 1), 2.0).tissue_fraction(0, 0, 0, 5), Error);
  EXPECT_THROW(detect_tissue(Image(4, 4, 1), 2.0), Error);
}

}  // namespace
}  // namespace sg::data
