// The pyramid TIFF writer: OpenSlide sees its files as generic-tiff with the levels we wrote;
// deflate files read back exactly (every level = OpenCV's area or nearest reduction of level 0);
// JPEG files within JPEG error; bands stream in order; failures name the file and leave none.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "data/opencv_view.h"
#include "data/pyramid_tiff_writer.h"
#include "data/slide_reader.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

class PyramidTiffWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sg_pyramid_" + std::to_string(rng_.seed()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A random image: 8x8-pixel blocks of random colours (JPEG-friendly, exact to compare).
  Image random_blocks(int width, int height) {
    Image image(width, height, 3);
    std::vector<uint8_t> colours(static_cast<size_t>((width + 7) / 8) * ((height + 7) / 8) * 3);
    for (uint8_t& c : colours) c = static_cast<uint8_t>(rng_.integer(0, 255));
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c)
          image.at(x, y)[c] = colours[(static_cast<size_t>(y / 8) * ((width + 7) / 8) + x / 8) * 3 + c];
    return image;
  }

  static BandRenderer from(const Image& image) {
    return [&image](int y0, Image& band) { std::copy_n(image.row(y0), band.pixels.size(), band.pixels.data()); };
  }

  static double mean_abs_diff(const Image& a, const Image& b) {
    EXPECT_EQ(a.pixels.size(), b.pixels.size());
    double sum = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    return sum / static_cast<double>(a.pixels.size());
  }

  testing::Rng rng_;
  fs::path dir_;
};

TEST_F(PyramidTiffWriterTest, DeflateLevelsReadBackExactly) {
  SG_TRACE_SEED(rng_);
  // Odd sizes: the edge tiles are partly past the image, the last band is short.
  const int width = static_cast<int>(rng_.integer(700, 1100)), height = static_cast<int>(rng_.integer(300, 600));
  const Image image = random_blocks(width, height);
  for (const auto downscale : {PyramidTiffOptions::Downscale::area, PyramidTiffOptions::Downscale::nearest}) {
    PyramidTiffOptions options;
    options.compression = PyramidTiffOptions::Compression::deflate;
    options.downscale = downscale;
    const std::string path = (dir_ / "deflate.tiff").string();
    write_pyramid_tiff(path, width, height, 3, from(image), options);

    const Slide slide(path);
    EXPECT_EQ(slide.vendor(), "generic-tiff");
    ASSERT_EQ(slide.level_count(), 3);
    EXPECT_EQ(slide.read_level(0).pixels, image.pixels);
    for (int level = 1; level < 3; ++level) {
      const int d = options.downsamples[static_cast<size_t>(level)];
      const LevelSize size = slide.level_dimensions(level);
      ASSERT_EQ(size, (LevelSize{width / d, height / d})) << "level " << level;
      // What the writer promises: the level is OpenCV's reduction of level 0's whole d x d blocks.
      cv::Mat expected;
      cv::resize(as_mat(image)(cv::Rect(0, 0, width / d * d, height / d * d)), expected,
                 cv::Size(width / d, height / d), 0, 0,
                 downscale == PyramidTiffOptions::Downscale::area ? cv::INTER_AREA : cv::INTER_NEAREST);
      EXPECT_EQ(slide.read_level(level).pixels, to_image(expected).pixels) << "level " << level;
    }
  }
}

TEST_F(PyramidTiffWriterTest, JpegLevelsWithinJpegError) {
  SG_TRACE_SEED(rng_);
  const int width = 1024, height = 512;
  // Smooth colours (JPEG's home ground): a gradient with a random tint.
  Image image(width, height, 3);
  const int tint = static_cast<int>(rng_.integer(0, 80));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      image.at(x, y)[0] = static_cast<uint8_t>(255 - x * 120 / width);
      image.at(x, y)[1] = static_cast<uint8_t>(100 + tint + y * 60 / height);
      image.at(x, y)[2] = static_cast<uint8_t>(200 - (x + y) * 100 / (width + height));
    }
  for (const bool ycbcr : {true, false}) {
    PyramidTiffOptions options;
    options.jpeg_ycbcr = ycbcr;
    options.jpeg_quality = 90;
    const std::string path = (dir_ / (ycbcr ? "ycbcr.tiff" : "rgb.tiff")).string();
    write_pyramid_tiff(path, width, height, 3, from(image), options);
    const Slide slide(path);
    ASSERT_EQ(slide.level_count(), 3);
    EXPECT_NEAR(slide.level_downsample(1), 4.0, 1e-9);
    EXPECT_NEAR(slide.level_downsample(2), 16.0, 1e-9);
    EXPECT_LT(mean_abs_diff(slide.read_level(0), image), 2.0) << (ycbcr ? "YCbCr" : "RGB");
    cv::Mat small;
    cv::resize(as_mat(image), small, cv::Size(width / 16, height / 16), 0, 0, cv::INTER_AREA);
    EXPECT_LT(mean_abs_diff(slide.read_level(2), to_image(small)), 2.0) << (ycbcr ? "YCbCr" : "RGB");
    // Not trivially equal: a mirrored image is far off.
    cv::Mat flipped;
    cv::flip(as_mat(image), flipped, 1);
    EXPECT_GT(mean_abs_diff(slide.read_level(0), to_image(flipped)), 20.0);
  }
}

TEST_F(PyramidTiffWriterTest, ResolutionTagsGiveMicronsPerPixel) {
  const Image image = random_blocks(256, 256);
  PyramidTiffOptions options;
  options.microns_per_pixel = 0.4856;
  options.compression = PyramidTiffOptions::Compression::deflate;
  const std::string path = (dir_ / "mpp.tiff").string();
  write_pyramid_tiff(path, 256, 256, 3, from(image), options);
  const auto mpp = Slide(path).microns_per_pixel();
  ASSERT_TRUE(mpp.has_value());
  EXPECT_NEAR(mpp->x, 0.4856, 1e-4);
  EXPECT_NEAR(mpp->y, 0.4856, 1e-4);

  options.microns_per_pixel = 0;  // no resolution tags
  write_pyramid_tiff(path, 256, 256, 3, from(image), options);
  EXPECT_FALSE(Slide(path).microns_per_pixel().has_value());
}

TEST_F(PyramidTiffWriterTest, BandsComeInOrderOnce) {
  const int width = 300, height = 1000;  // 1000 = 3 * 256 + 232: a short last band
  std::vector<std::pair<int, int>> bands;
  write_pyramid_tiff((dir_ / "bands.tiff").string(), width, height, 3, [&](int y0, Image& band) {
    bands.emplace_back(y0, band.height);
    std::fill(band.pixels.begin(), band.pixels.end(), uint8_t{200});
  });
  EXPECT_EQ(bands, (std::vector<std::pair<int, int>>{{0, 256}, {256, 256}, {512, 256}, {768, 232}}));
}

TEST_F(PyramidTiffWriterTest, BadOptionsAndFailuresNameTheFileAndLeaveNone) {
  const Image image = random_blocks(512, 512);
  const std::string path = (dir_ / "bad.tiff").string();
  auto error_of = [&](const PyramidTiffOptions& options, const BandRenderer& render, const std::string& to = "") {
    try {
      write_pyramid_tiff(to.empty() ? path : to, 512, 512, 3, render, options);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  PyramidTiffOptions options;
  options.tile_size = 200;
  EXPECT_NE(error_of(options, from(image)).find("bad.tiff: tile size 200 must be a positive multiple of 16"),
            std::string::npos);
  options = {};
  options.downsamples = {1, 3};
  EXPECT_NE(error_of(options, from(image)).find("downsample 3 must grow level by level and divide the tile size"),
            std::string::npos);
  options = {};
  options.jpeg_quality = 0;
  EXPECT_NE(error_of(options, from(image)).find("JPEG quality 0"), std::string::npos);
  // A directory that does not exist: the temporary file cannot be created, and the message says why.
  const std::string nowhere = (dir_ / "no_such_dir" / "x.tiff").string();
  const std::string message = error_of({}, from(image), nowhere);
  EXPECT_NE(message.find(nowhere + ": cannot create the temporary file "), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  // A renderer that fails half way: its error passes through, and neither the file nor the
  // temporary file is left behind.
  const std::string failed = error_of({}, [](int y0, Image&) { SG_CHECK(y0 < 256, "renderer gave up at row ", y0); });
  EXPECT_EQ(failed, "renderer gave up at row 256");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(temporaries_of(path).empty());
}

}  // namespace
}  // namespace sg::data
