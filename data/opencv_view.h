#pragma once
// OpenCV views of an sg::data::Image: no copy, the Mat points into the image's pixels, so it
// must not outlive the image or see the image resized.
#include <opencv2/core.hpp>

#include "data/image.h"

namespace sg::data {

inline cv::Mat as_mat(Image& image) {
  return cv::Mat(image.height, image.width, CV_8UC(image.channels), image.pixels.data());
}
inline cv::Mat as_mat(const Image& image) {  // read-only by convention: do not write through it
  return cv::Mat(image.height, image.width, CV_8UC(image.channels), const_cast<uint8_t*>(image.pixels.data()));
}

// A deep copy of a Mat (any 8-bit type, continuous or not) into an Image.
inline Image to_image(const cv::Mat& mat) {
  SG_CHECK(mat.depth() == CV_8U, "to_image: expected an 8-bit OpenCV image, got depth ", mat.depth());
  Image image(mat.cols, mat.rows, mat.channels());
  for (int y = 0; y < mat.rows; ++y) {
    const uint8_t* src = mat.ptr<uint8_t>(y);
    std::copy(src, src + image.row_bytes(), image.row(y));
  }
  return image;
}

}  // namespace sg::data
