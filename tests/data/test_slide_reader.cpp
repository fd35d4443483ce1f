// Slide (OpenSlide) and SlideCache on synthetic slides: levels and properties as written, regions
// equal to the painted pixels within JPEG error at levels 0 and 2, white outside the image,
// handles shared across threads, and every bad file reported once with its path.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "data/opencv_view.h"
#include "data/slide_reader.h"
#include "data/pyramid_tiff_writer.h"
#include "data/synthetic_slides.h"
#include "data/tiff_preflight.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

constexpr int kWidth = 1536, kHeight = 1024;

double mean_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.pixels.size() != b.pixels.size()) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / static_cast<double>(a.pixels.size());
}

// The mean |a - b| over the pixels where `painted` is not white (tissue and ink), and their count.
std::pair<double, int64_t> tissue_abs_diff(const Image& a, const Image& b, const Image& painted) {
  double sum = 0;
  int64_t pixels = 0;
  for (size_t i = 0; i + 2 < painted.pixels.size(); i += 3) {
    if (painted.pixels[i] + painted.pixels[i + 1] + painted.pixels[i + 2] >= 750) continue;
    ++pixels;
    for (size_t c = 0; c < 3; ++c) sum += std::abs(int(a.pixels[i + c]) - int(b.pixels[i + c]));
  }
  return {pixels > 0 ? sum / (3.0 * static_cast<double>(pixels)) : 0.0, pixels};
}

Image crop(const Image& image, int x, int y, int w, int h) { return to_image(as_mat(image)(cv::Rect(x, y, w, h))); }

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// One synthetic slide shared by the suite (writing it is the slow part), plus what was painted.
class SlideReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::Rng rng;
    dir_ = new fs::path(fs::temp_directory_path() / ("sg_slide_reader_" + std::to_string(rng.seed())));
    fs::create_directories(*dir_);
    SyntheticSlideSpec spec;
    spec.image_id = "reader";
    spec.width = kWidth;
    spec.height = kHeight;
    spec.isup_grade = 4;
    spec.gleason_score = "4+4";
    spec.seed = rng.seed();
    spec.pen_marks = true;
    const SyntheticSlide slide(spec);
    painted_ = new Image(kWidth, kHeight, 3);
    slide.render_rgb(0, *painted_);
    slide.write_slide(path());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete painted_;
  }
  static std::string path() { return (*dir_ / "slide.tiff").string(); }
  static fs::path& dir() { return *dir_; }
  static const Image& painted() { return *painted_; }

  // A copy of the slide with `edit` applied to its bytes.
  static std::string damaged_copy(const std::string& name, const std::function<void(std::vector<char>&)>& edit) {
    std::ifstream in(path(), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    edit(bytes);
    const std::string target = (*dir_ / name).string();
    std::ofstream out(target, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return target;
  }

 private:
  static fs::path* dir_;
  static Image* painted_;
};
fs::path* SlideReaderTest::dir_ = nullptr;
Image* SlideReaderTest::painted_ = nullptr;

TEST_F(SlideReaderTest, LevelsAndProperties) {
  const Slide slide(path());
  EXPECT_EQ(slide.path(), path());
  EXPECT_EQ(slide.vendor(), "generic-tiff");
  ASSERT_EQ(slide.level_count(), 3);
  EXPECT_EQ(slide.level_dimensions(0), (LevelSize{kWidth, kHeight}));
  EXPECT_EQ(slide.level_dimensions(1), (LevelSize{kWidth / 4, kHeight / 4}));
  EXPECT_EQ(slide.level_dimensions(2), (LevelSize{kWidth / 16, kHeight / 16}));
  EXPECT_DOUBLE_EQ(slide.level_downsample(0), 1.0);
  EXPECT_NEAR(slide.level_downsample(1), 4.0, 1e-9);
  EXPECT_NEAR(slide.level_downsample(2), 16.0, 1e-9);
  EXPECT_EQ(slide.property("openslide.level-count"), "3");
  EXPECT_FALSE(slide.property("no.such.property").has_value());
  const auto properties = slide.properties();
  EXPECT_EQ(properties.at("openslide.vendor"), "generic-tiff");
  EXPECT_EQ(properties.at("tiff.ImageDescription"), "slidegrade synthetic PANDA-like slide reader");
  const auto mpp = slide.microns_per_pixel();
  ASSERT_TRUE(mpp.has_value());
  EXPECT_NEAR(mpp->x, 0.5, 1e-3);
  EXPECT_NEAR(mpp->y, 0.5, 1e-3);
  EXPECT_EQ(slide.error(), "");
  const std::string message = error_of([&] { slide.level_dimensions(3); });
  EXPECT_NE(message.find(path() + ": level_dimensions: level 3 does not exist (the slide has 3 levels"),
            std::string::npos)
      << message;
}

TEST_F(SlideReaderTest, RegionsMatchThePaintedPixels) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Slide slide(path());
  // Level 0: random windows, compared with what was painted.
  for (int trial = 0; trial < 6; ++trial) {
    const int w = static_cast<int>(rng.integer(64, 400)), h = static_cast<int>(rng.integer(64, 300));
    const int x = static_cast<int>(rng.integer(0, kWidth - w)), y = static_cast<int>(rng.integer(0, kHeight - h));
    const Image region = slide.read_region(x, y, 0, w, h);
    ASSERT_EQ(region.channels, 3);
    EXPECT_LT(mean_abs_diff(region, crop(painted(), x, y, w, h)), 4.0)
        << "window " << x << "," << y << " " << w << "x" << h;
  }
  // The whole level 0, over the tissue alone (most of a slide is white), and a check that the
  // comparison can fail: shifted by 3 px it is far off.
  const Image level0 = slide.read_level(0);
  EXPECT_LT(mean_abs_diff(level0, painted()), 3.0);
  const auto [error, tissue] = tissue_abs_diff(level0, painted(), painted());
  EXPECT_GT(tissue, kWidth * kHeight / 20) << "the slide should hold tissue";
  EXPECT_LT(error, 4.0);
  const Image shifted = crop(level0, 3, 0, kWidth - 3, kHeight), unshifted = crop(painted(), 0, 0, kWidth - 3, kHeight);
  EXPECT_GT(tissue_abs_diff(shifted, unshifted, unshifted).first, error + 5);
  // Level 2 = the painted image box-averaged by 16, within JPEG error (larger here: at 1/16 every
  // 8x8 JPEG block is full of detail), and a one-pixel shift is far off.
  cv::Mat reduced_mat;
  cv::resize(as_mat(painted()), reduced_mat, cv::Size(kWidth / 16, kHeight / 16), 0, 0, cv::INTER_AREA);
  const Image reduced = to_image(reduced_mat), level2 = slide.read_level(2);
  const auto [error2, tissue2] = tissue_abs_diff(level2, reduced, reduced);
  EXPECT_GT(tissue2, kWidth * kHeight / 16 / 16 / 20);
  EXPECT_LT(error2, 9.0);
  const int w2 = kWidth / 16, h2 = kHeight / 16;
  const Image shifted2 = crop(level2, 1, 0, w2 - 1, h2), unshifted2 = crop(reduced, 0, 0, w2 - 1, h2);
  EXPECT_GT(tissue_abs_diff(shifted2, unshifted2, unshifted2).first, error2 + 4);
  const Image window = slide.read_region(16 * 20, 16 * 10, 2, 40, 30);  // x0, y0 in level-0 pixels
  EXPECT_EQ(window.pixels, crop(level2, 20, 10, 40, 30).pixels);
}

TEST_F(SlideReaderTest, OutsideTheImageIsWhite) {
  const Slide slide(path());
  // Straddling the top-left corner: 64 columns and 32 rows outside.
  const Image region = slide.read_region(-64, -32, 0, 192, 96);
  const Image inside = slide.read_region(0, 0, 0, 128, 64);
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 192; ++x)
      for (int c = 0; c < 3; ++c) {
        if (x < 64 || y < 32)
          ASSERT_EQ(region.at(x, y)[c], 255) << x << "," << y;
        else
          ASSERT_EQ(region.at(x, y)[c], inside.at(x - 64, y - 32)[c]) << x << "," << y;
      }
  // Entirely past the bottom-right corner, at level 1.
  const Image outside = slide.read_region(kWidth + 100, kHeight + 100, 1, 50, 40);
  EXPECT_EQ(outside.pixels, std::vector<uint8_t>(50 * 40 * 3, 255));
}

TEST_F(SlideReaderTest, ReadLevelInStripsEqualsOneRead) {
  const Slide slide(path());
  for (int level = 0; level < 3; ++level) {
    const LevelSize size = slide.level_dimensions(level);
    const Image whole = slide.read_level(level);
    EXPECT_EQ(whole.width, size.width);
    EXPECT_EQ(whole.height, size.height);
    // 37 rows per strip at level 0 (a short last strip), one row per strip at level 2.
    const Image strips = slide.read_level(level, level == 2 ? 1 : 37 * size.width);
    EXPECT_EQ(strips.pixels, whole.pixels) << "level " << level;
  }
  EXPECT_NE(
      error_of([&] { slide.read_region(0, 0, 0, 0, 5); }).find(path() + ": read_region: size 0x5 must be positive"),
      std::string::npos);
}

TEST_F(SlideReaderTest, CacheSharesHandlesAcrossThreads) {
  SlideCache cache(2);
  const std::shared_ptr<Slide> first = cache.get(path());
  EXPECT_EQ(cache.get(path()).get(), first.get());
  EXPECT_EQ(cache.size(), 1u);

  const Image reference = first->read_region(200, 150, 0, 256, 256);
  std::vector<std::thread> threads;
  std::atomic<int> same_handle{0}, same_pixels{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        const std::shared_ptr<Slide> slide = cache.get(path());
        same_handle += slide.get() == first.get();
        same_pixels += slide->read_region(200, 150, 0, 256, 256).pixels == reference.pixels;
      }
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(same_handle.load(), 40);
  EXPECT_EQ(same_pixels.load(), 40);

  // Least recently used goes first; a dropped slide lives on while held.
  fs::copy_file(path(), dir() / "b.tiff", fs::copy_options::overwrite_existing);
  fs::copy_file(path(), dir() / "c.tiff", fs::copy_options::overwrite_existing);
  const auto b = cache.get((dir() / "b.tiff").string());
  cache.get(path());                                      // path is now the newest, b the oldest
  const auto c = cache.get((dir() / "c.tiff").string());  // drops b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.get(path()).get(), first.get());
  EXPECT_NE(cache.get((dir() / "b.tiff").string()).get(), b.get());
  EXPECT_EQ(b->level_count(), 3);

  // A failed open is not cached: it fails again, and succeeds once the file is there.
  const std::string later = (dir() / "later.tiff").string();
  EXPECT_NE(error_of([&] { cache.get(later); }).find(later + ": no such file"), std::string::npos);
  fs::copy_file(path(), later);
  EXPECT_EQ(cache.get(later)->level_count(), 3);
}

TEST_F(SlideReaderTest, BadFilesGiveOneClearErrorWithThePath) {
  const std::string missing = (dir() / "missing.tiff").string();
  EXPECT_EQ(error_of([&] { Slide s(missing); }), missing + ": no such file");

  const std::string text = (dir() / "notes.tiff").string();
  std::ofstream(text) << "image_id,isup_grade\nabc,3\n";
  const std::string not_slide = error_of([&] { Slide s(text); });
  EXPECT_NE(not_slide.find("not a slide OpenSlide can read: " + text + " (the file exists, " +
                           std::to_string(fs::file_size(text)) + " bytes; OpenSlide recognises no format in it)"),
            std::string::npos)
      << not_slide;

  EXPECT_NE(error_of([&] { Slide s(dir().string()); }).find("is a directory"), std::string::npos);

  // Cut to half its bytes: either OpenSlide refuses it, or it opens and reading fails; both
  // name the file.
  const std::string truncated = damaged_copy("truncated.tiff", [](std::vector<char>& b) { b.resize(b.size() / 2); });
  const std::string cut = error_of([&] {
    const Slide s(truncated);
    for (int level = 0; level < s.level_count(); ++level) s.read_level(level);
  });
  EXPECT_NE(cut.find(truncated), std::string::npos) << cut;
  if (cut.rfind("not a slide", 0) == 0) {  // refused at open (what OpenSlide 3.4.1 does): say why
    EXPECT_NE(cut.find("it starts like a TIFF, so it is probably truncated or damaged"), std::string::npos) << cut;
  }

  // Tile data zeroed in the middle of level 0: the directories are intact, so it opens, and the
  // read of the damaged tiles throws with the path (and leaves the handle in OpenSlide's error state).
  const std::string zeroed = damaged_copy("zeroed.tiff", [](std::vector<char>& b) {
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(b.size() / 10),
              b.begin() + static_cast<std::ptrdiff_t>(b.size() / 3), 0);
  });
  const Slide damaged(zeroed);
  EXPECT_EQ(damaged.level_count(), 3);
  const std::string read = error_of([&] { damaged.read_level(0); });
  EXPECT_NE(read.find(zeroed + ": read_level(0) failed at rows"), std::string::npos) << read;
  EXPECT_NE(read.find("OpenSlide: "), std::string::npos) << read;
  EXPECT_NE(damaged.error(), "");
  // Sticky: even a good region of the same handle now throws; the cache reopens a dead handle.
  EXPECT_NE(error_of([&] { damaged.read_region(0, 0, 2, 4, 4); }), "");
  SlideCache cache(4);
  const auto dead = cache.get(zeroed);
  EXPECT_NE(error_of([&] { dead->read_level(0); }), "");
  EXPECT_NE(cache.get(zeroed).get(), dead.get());
}

}  // namespace
}  // namespace sg::data

namespace sg::data {
namespace {

// Found by fuzz_slide_reader: TIFFs of a few kilobytes whose directories declare tiles of
// gigabytes or tag values far past the end of the file, for which OpenSlide asked g_malloc for
// 2.6-9.8 GB while opening or reading them (an abort when the allocation fails). Slide refuses them
// before OpenSlide sees them.
TEST(SlideReaderFuzzRegressions, HugeDeclaredTilesAreRefusedBeforeOpenSlideAllocates) {
  const fs::path dir = fs::path(SG_TEST_DATA_DIR) / "fuzz_regressions" / "tiff";
  int files = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    ++files;
    const std::string path = entry.path().string();
    try {
      const Slide slide(path);
      ADD_FAILURE() << path << ": opened";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path + ": TIFF directory ", 0), 0u) << message;
      EXPECT_TRUE(message.find("past the end of the") != std::string::npos ||
                  message.find("more than the") != std::string::npos)
          << message;
      EXPECT_NE(message.find("-byte file"), std::string::npos) << message;
    }
  }
  EXPECT_EQ(files, 6);
}

// A tile size at the limit is still read: the preflight refuses only what OpenSlide must not try.
TEST(SlideReaderFuzzRegressions, OrdinaryTiledTiffsPassThePreflight) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "ok.tiff").string();
  PyramidTiffOptions options;
  options.tile_size = 64;
  options.downsamples = {1, 4};
  write_pyramid_tiff(path, 256, 128, 3, [](int, Image& band) { std::fill(band.pixels.begin(), band.pixels.end(), 200); },
                     options);
  EXPECT_NO_THROW(check_tiff_tiles(path));
  EXPECT_EQ(Slide(path).level_count(), 2);
  const std::string text = (dir.path() / "text.tiff").string();
  std::ofstream(text) << "not a TIFF at all";
  EXPECT_NO_THROW(check_tiff_tiles(text));  // left to OpenSlide, which names it
}

}  // namespace
}  // namespace sg::data
