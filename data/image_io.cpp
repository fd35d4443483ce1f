#include "data/image_io.h"

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/opencv_view.h"

namespace sg::data {

void write_png(const std::string& path, const Image& image) {
  SG_CHECK(!image.empty(), path, ": cannot write an empty image as PNG");
  SG_CHECK(image.channels == 1 || image.channels == 3 || image.channels == 4, path, ": cannot write a ", image.channels,
           "-channel image as PNG (expected 1, 3 or 4)");
  cv::Mat bgr;
  if (image.channels == 3)
    cv::cvtColor(as_mat(image), bgr, cv::COLOR_RGB2BGR);
  else if (image.channels == 4)
    cv::cvtColor(as_mat(image), bgr, cv::COLOR_RGBA2BGRA);
  else
    bgr = as_mat(image);
  bool written = false;
  try {
    written = cv::imwrite(path, bgr);
  } catch (const cv::Exception& e) {
    throw Error(detail::concat(path, ": writing PNG failed: ", e.what()));
  }
  SG_CHECK(written, path, ": writing PNG failed (is the directory there and writable?)");
}

Image read_png(const std::string& path) {
  SG_CHECK(std::filesystem::is_regular_file(path), path, ": cannot open: no such file");
  cv::Mat mat;
  try {
    mat = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw Error(detail::concat(path, ": reading image failed: ", e.what()));
  }
  SG_CHECK(!mat.empty(), path, ": not an image OpenCV can read");
  SG_CHECK(mat.depth() == CV_8U, path, ": expected 8 bits per channel, got OpenCV depth ", mat.depth());
  if (mat.channels() == 3) {
    cv::cvtColor(mat, mat, cv::COLOR_BGR2RGB);
  } else if (mat.channels() == 4) {
    cv::cvtColor(mat, mat, cv::COLOR_BGRA2RGBA);
  } else {
    SG_CHECK(mat.channels() == 1, path, ": expected 1, 3 or 4 channels, got ", mat.channels());
  }
  return to_image(mat);
}

}  // namespace sg::data
