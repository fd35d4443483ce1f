// PNG files: grey, RGB and RGBA round-trip exactly, RGB is stored as RGB (checked with OpenCV's
// own BGR reader), and errors name the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <opencv2/imgcodecs.hpp>

#include "data/image_io.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImageIo, PngRoundTripsAndKeepsChannelOrder) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const auto dir = std::filesystem::temp_directory_path() / ("sg_png_" + std::to_string(rng.seed()));
  std::filesystem::create_directories(dir);
  for (int channels : {1, 3, 4}) {
    Image image(37, 23, channels);
    for (uint8_t& v : image.pixels) v = uint8_t(rng.integer(0, 255));
    const std::string path = (dir / (std::to_string(channels) + "ch.png")).string();
    write_png(path, image);
    const Image back = read_png(path);
    EXPECT_EQ(std::make_tuple(back.width, back.height, back.channels), std::make_tuple(37, 23, channels));
    EXPECT_EQ(back.pixels, image.pixels) << channels << " channels";
  }
  // A red pixel written as RGB is red to every other reader: OpenCV's own gives B, G, R.
  Image red(2, 1, 3, 0);
  red.at(0, 0)[0] = 255;
  const std::string path = (dir / "red.png").string();
  write_png(path, red);
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(bgr.empty());
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));

  const std::string missing = (dir / "missing.png").string();
  EXPECT_NE(error_of([&] { read_png(missing); }).find(missing), std::string::npos);
  const std::string not_png = (dir / "not.png").string();
  { std::ofstream(not_png) << "hello"; }
  EXPECT_NE(error_of([&] { read_png(not_png); }).find(not_png), std::string::npos);
  const std::string no_dir = (dir / "no_such_dir" / "x.png").string();
  EXPECT_NE(error_of([&] { write_png(no_dir, red); }).find(no_dir), std::string::npos);
  EXPECT_NE(error_of([&] { write_png(path, Image(3, 3, 2)); }).find("2-channel"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sg::data
