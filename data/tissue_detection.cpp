#include "data/tissue_detection.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "data/opencv_view.h"

namespace sg::data {
namespace {

cv::Mat ellipse(int size) { return cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(size, size)); }

// Drops 8-connected components smaller than min_pixels from a 0/255 mask.
void remove_small_components(cv::Mat& mask, int min_pixels) {
  cv::Mat labels, stats, centroids;
  const int count = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  std::vector<uint8_t> keep(size_t(count), 0);
  for (int i = 1; i < count; ++i) keep[size_t(i)] = stats.at<int>(i, cv::CC_STAT_AREA) >= min_pixels;
  for (int y = 0; y < mask.rows; ++y) {
    uint8_t* m = mask.ptr<uint8_t>(y);
    const int* l = labels.ptr<int>(y);
    for (int x = 0; x < mask.cols; ++x)
      if (m[x] && !keep[size_t(l[x])]) m[x] = 0;
  }
}

}  // namespace

TissueMask::TissueMask(Image mask, double downsample, int saturation_threshold)
    : mask_(std::move(mask)), downsample_(downsample), saturation_threshold_(saturation_threshold) {
  SG_CHECK(mask_.channels == 1, "TissueMask: expected a one-channel mask, got ", mask_.channels, " channels");
  SG_CHECK(downsample_ > 0 && std::isfinite(downsample_), "TissueMask: downsample must be positive, got ", downsample_);
  const size_t w = size_t(mask_.width), h = size_t(mask_.height);
  integral_.assign((w + 1) * (h + 1), 0);
  for (size_t y = 0; y < h; ++y) {
    const uint8_t* row = mask_.row(int(y));
    int64_t run = 0;
    for (size_t x = 0; x < w; ++x) {
      run += row[x] ? 1 : 0;
      integral_[(y + 1) * (w + 1) + x + 1] = integral_[y * (w + 1) + x + 1] + run;
    }
  }
  for (uint8_t& v : mask_.pixels) v = v ? 255 : 0;
}

double TissueMask::area_before(double x, double y) const {
  const int w = mask_.width, h = mask_.height;
  x = std::clamp(x, 0.0, double(w));
  y = std::clamp(y, 0.0, double(h));
  // The integral of a pixelwise-constant mask is bilinear inside each pixel, so interpolating the
  // integral image gives the exact covered area at fractional coordinates.
  const int ix = std::min(int(x), w - 1), iy = std::min(int(y), h - 1);
  const double a = x - ix, b = y - iy;
  const size_t stride = size_t(w) + 1;
  auto at = [&](int xx, int yy) { return double(integral_[size_t(yy) * stride + size_t(xx)]); };
  return at(ix, iy) * (1 - a) * (1 - b) + at(ix + 1, iy) * a * (1 - b) + at(ix, iy + 1) * (1 - a) * b +
         at(ix + 1, iy + 1) * a * b;
}

double TissueMask::tissue_fraction(int64_t x0, int64_t y0, int64_t w, int64_t h) const {
  SG_CHECK(w > 0 && h > 0, "tissue_fraction: region ", w, "x", h, " at (", x0, ", ", y0, ") is empty");
  if (mask_.empty()) return 0.0;
  const double mx0 = double(x0) / downsample_, my0 = double(y0) / downsample_;
  const double mx1 = double(x0 + w) / downsample_, my1 = double(y0 + h) / downsample_;
  const double tissue = area_before(mx1, my1) - area_before(mx0, my1) - area_before(mx1, my0) + area_before(mx0, my0);
  return std::clamp(tissue / ((mx1 - mx0) * (my1 - my0)), 0.0, 1.0);
}

double TissueMask::overall_fraction() const {
  if (mask_.empty()) return 0.0;
  return double(integral_.back()) / (double(mask_.width) * mask_.height);
}

TissueMask detect_tissue(const Image& level, double downsample, const TissueOptions& options) {
  SG_CHECK(level.channels == 3, "detect_tissue: expected an RGB level (3 channels), got ", level.channels,
           " channels (", level.width, "x", level.height, ")");
  SG_CHECK(options.median_kernel >= 1 && options.median_kernel % 2 == 1,
           "detect_tissue: median_kernel must be odd, got ", options.median_kernel);
  if (level.empty()) return TissueMask(Image(level.width, level.height, 1), downsample, options.min_saturation);

  cv::Mat hsv;
  cv::cvtColor(as_mat(level), hsv, cv::COLOR_RGB2HSV);  // H 0..179, S 0..255, V 0..255
  cv::Mat channels[3];
  cv::split(hsv, channels);
  cv::Mat saturation = channels[1];
  if (options.median_kernel > 1) cv::medianBlur(saturation, saturation, options.median_kernel);

  cv::Mat tissue;
  const double otsu = cv::threshold(saturation, tissue, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  const int threshold = std::clamp(int(otsu), options.min_saturation, std::max(options.min_saturation, options.max_saturation));
  cv::threshold(saturation, tissue, threshold, 255, cv::THRESH_BINARY);  // tissue: saturation > threshold

  if (options.close_kernel > 0) cv::morphologyEx(tissue, tissue, cv::MORPH_CLOSE, ellipse(options.close_kernel));
  if (options.open_kernel > 0) cv::morphologyEx(tissue, tissue, cv::MORPH_OPEN, ellipse(options.open_kernel));
  // Ink goes after the morphology so that closing cannot bridge a stroke back into tissue.
  if (options.exclude_pen) {
    cv::Mat coloured_ink, dark_ink, ink;
    cv::inRange(hsv, cv::Scalar(options.pen_hue_min, threshold + 1, 0), cv::Scalar(options.pen_hue_max, 255, 255),
                coloured_ink);
    cv::inRange(channels[2], cv::Scalar(0), cv::Scalar(options.pen_max_value), dark_ink);
    cv::bitwise_or(coloured_ink, dark_ink, ink);
    if (options.pen_dilate > 0) cv::dilate(ink, ink, ellipse(options.pen_dilate));
    tissue.setTo(0, ink);
  }
  if (options.min_component_pixels > 0) remove_small_components(tissue, options.min_component_pixels);
  return TissueMask(to_image(tissue), downsample, threshold);
}

}  // namespace sg::data
