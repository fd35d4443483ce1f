// The whole slide pipeline on synthetic PANDA-like slides: slide -> tiles (tile cache) -> augment
// -> mosaic, driven by the AsyncLoader; bad slides skipped and counted.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "data/async_loader.h"
#include "data/errors.h"
#include "data/panda_dataset.h"
#include "data/slide_mosaics.h"
#include "data/synthetic_slides.h"
#include "data/tile_cache.h"
#include "data/tiler.h"
#include "tests/weights/temp_dir.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

// Six small synthetic slides (grades 0-5), written once for the suite.
class SlideMosaicsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    SyntheticDatasetOptions options;
    options.train_slides = 6;
    options.test_slides = 0;
    options.width = 2048;
    options.height = 1024;
    options.seed = 5;
    options.threads = 2;
    write_synthetic_dataset(dir_->path().string(), options);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::vector<SlideItem> items() {
    const PandaDataset dataset = read_panda_train_csv((dir_->path() / "train.csv").string());
    std::vector<SlideItem> out;
    for (const PandaRow& row : dataset.rows)
      out.push_back({row.image_id, panda_slide_path(dir_->path(), row.image_id).string(), row.isup_grade});
    return out;
  }
  static MosaicRecipe recipe(bool augment) {
    MosaicRecipe r;
    r.tiles = TileSpec{16, 64, 1, false};
    r.shuffle_tiles = augment;
    r.augment = augment ? AugmentConfig{} : AugmentConfig::none();
    return r;
  }

  static testing::TempDir* dir_;
};
testing::TempDir* SlideMosaicsTest::dir_ = nullptr;

TEST_F(SlideMosaicsTest, MosaicIsTheSlidesTilesInOrder) {
  const std::vector<SlideItem> all = items();
  ASSERT_EQ(all.size(), 6u);
  const SlideMosaics mosaics(all, recipe(false), std::make_shared<SlideCache>(4));
  const MosaicRecipe& r = mosaics.recipe();
  EXPECT_EQ(r.sample_shape().height, 4 * 64);
  EXPECT_EQ(r.sample_shape().width, 4 * 64);
  const Image mosaic = mosaics.mosaic(3, 0);
  const TileSet tiles = mosaics.tiles(all[3]);
  ASSERT_EQ(mosaic.width, 256);
  // Tile 5 sits at row 1, column 1 of the 4x4 grid; no augmentation: the bytes are the tile's.
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(mosaic.at(64 + x, 64 + y)[c], tiles.tile(5)[(y * 64 + x) * 3 + c]) << x << "," << y;
  // Most tissue first.
  for (int i = 1; i < 16; ++i) EXPECT_LE(tiles.placements[size_t(i - 1)].pixel_sum, tiles.placements[size_t(i)].pixel_sum);
}

TEST_F(SlideMosaicsTest, SeededAugmentationIsReproducible) {
  const SlideMosaics mosaics(items(), recipe(true), std::make_shared<SlideCache>(4));
  const Image a = mosaics.mosaic(2, 77), b = mosaics.mosaic(2, 77), c = mosaics.mosaic(2, 78);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(a.pixels, c.pixels);
}

TEST_F(SlideMosaicsTest, TileCacheServesLaterEpochsWithTheSameTiles) {
  testing::TempDir cache_dir;
  auto cache = std::make_shared<TileCache>(cache_dir.path());
  const std::vector<SlideItem> all = items();
  const SlideMosaics cached(all, recipe(false), std::make_shared<SlideCache>(4), cache);
  const SlideMosaics direct(all, recipe(false), std::make_shared<SlideCache>(4));
  const TileSet first = cached.tiles(all[1]);
  EXPECT_EQ(cache->stats().stores, 1);
  const TileSet second = cached.tiles(all[1]);
  EXPECT_EQ(cache->stats().hits, 1);
  EXPECT_EQ(first.pixels, second.pixels);
  EXPECT_EQ(first.placements, second.placements);
  EXPECT_EQ(direct.tiles(all[1]).pixels, second.pixels);
  // Other tiling parameters: a miss, not the old tiles.
  MosaicRecipe other = recipe(false);
  other.tiles.size = 32;
  const SlideMosaics resized(all, other, std::make_shared<SlideCache>(4), cache);
  EXPECT_EQ(resized.tiles(all[1]).spec.size, 32);
  EXPECT_EQ(cache->stats().hits, 1);
}

// The loader gives the same batches with 0 and 2 workers; a missing slide, a truncated slide and
// a file that is not a slide are skipped, counted and named, and the epoch goes on.
TEST_F(SlideMosaicsTest, LoaderSkipsBadSlidesAndIsDeterministic) {
  testing::TempDir scratch;
  std::vector<SlideItem> all = items();
  const fs::path truncated = scratch.path() / "truncated.tiff";
  fs::copy_file(all[0].path, truncated);
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  const fs::path not_a_slide = scratch.path() / "notes.tiff";
  std::ofstream(not_a_slide) << "this is not a slide\n";
  all.push_back({"missing", (scratch.path() / "missing.tiff").string(), 2});
  all.push_back({"truncated", truncated.string(), 3});
  all.push_back({"notes", not_a_slide.string(), 4});

  const auto run = [&](int workers) {
    const SlideMosaics mosaics(all, recipe(true), std::make_shared<SlideCache>(4));
    AsyncLoaderConfig config;
    config.batch_size = 2;
    config.sample_shape = mosaics.recipe().sample_shape();
    config.target_count = 5;
    config.workers = workers;
    config.seed = 9;
    AsyncLoader loader(config, mosaics.size(), mosaics.sample_function());
    std::vector<uint8_t> bytes;
    std::vector<int32_t> labels;
    std::vector<float> targets;
    while (std::optional<Batch> batch = loader.next()) {
      bytes.insert(bytes.end(), batch->pixels().begin(), batch->pixels().end());
      labels.insert(labels.end(), batch->labels().begin(), batch->labels().end());
      targets.insert(targets.end(), batch->targets().begin(), batch->targets().end());
    }
    EXPECT_EQ(loader.stats().items_skipped, 3);
    EXPECT_EQ(loader.stats().items_loaded, 6);
    std::vector<std::string> skipped;
    for (const SkippedItem& s : loader.skipped_items()) skipped.push_back(s.name + ": " + s.message);
    return std::make_tuple(bytes, labels, targets, skipped);
  };
  const auto [bytes0, labels0, targets0, skipped0] = run(0);
  const auto [bytes2, labels2, targets2, skipped2] = run(2);
  EXPECT_EQ(bytes0, bytes2);
  EXPECT_EQ(labels0, labels2);
  EXPECT_EQ(skipped0, skipped2);
  ASSERT_EQ(labels0.size(), 6u);
  // Binned ordinal targets: grade k sets the first k of 5.
  for (size_t i = 0; i < labels0.size(); ++i)
    for (int k = 0; k < 5; ++k) EXPECT_EQ(targets0[i * 5 + size_t(k)], k < labels0[i] ? 1.0f : 0.0f);
  std::string all_skipped;
  for (const std::string& s : skipped0) all_skipped += s + "\n";
  EXPECT_NE(all_skipped.find("missing.tiff"), std::string::npos) << all_skipped;
  EXPECT_NE(all_skipped.find("truncated.tiff"), std::string::npos) << all_skipped;
  EXPECT_NE(all_skipped.find("notes.tiff"), std::string::npos) << all_skipped;
}

// A slide that was read fine in epoch 0 is damaged on disk before epoch 1 (a failing disk, a sync
// tool rewriting it). The slide cache holds one handle, so each slide is opened again when its
// turn comes (a handle still open would keep serving OpenSlide's cached tiles of the old file).
// The slide is skipped and counted in epoch 1, the epoch goes on with the others, and it is named.
TEST_F(SlideMosaicsTest, SlideDamagedBetweenEpochsIsSkippedAndCounted) {
  testing::TempDir scratch;
  std::vector<SlideItem> all = items();
  for (SlideItem& item : all) {
    const fs::path copy = scratch.path() / fs::path(item.path).filename();
    fs::copy_file(item.path, copy);
    item.path = copy.string();
  }
  const SlideMosaics mosaics(all, recipe(false), std::make_shared<SlideCache>(1));
  AsyncLoaderConfig config;
  config.batch_size = 2;
  config.sample_shape = mosaics.recipe().sample_shape();
  config.target_count = 5;
  config.workers = 2;
  config.seed = 3;
  AsyncLoader loader(config, mosaics.size(), mosaics.sample_function());
  const auto run_epoch = [&](int epoch) {
    loader.start_epoch(epoch);
    int64_t samples = 0;
    while (std::optional<Batch> batch = loader.next()) samples += int64_t(batch->labels().size());
    return samples;
  };
  EXPECT_EQ(run_epoch(0), 6);
  EXPECT_EQ(loader.stats().items_skipped, 0);

  // Keep the TIFF header and directories' start, lose the tile data the levels point to.
  fs::resize_file(all[2].path, 4096);
  EXPECT_EQ(run_epoch(1), 5);
  EXPECT_EQ(loader.stats().items_skipped, 1);
  ASSERT_EQ(loader.skipped_items().size(), 1u);
  const SkippedItem skipped = loader.skipped_items()[0];
  EXPECT_EQ(skipped.name, all[2].path);  // the item name SlideMosaics gives: its path
  EXPECT_EQ(skipped.epoch, 1);
  EXPECT_NE(skipped.message.find(all[2].path), std::string::npos) << skipped.message;
}

// The loader's sample function owns what it reads: a training run that stops with an error
// destroys its SlideMosaics while the workers may still be producing samples (found by the
// AddressSanitizer build as a heap-use-after-free in memory_limit_cli).
TEST_F(SlideMosaicsTest, LoaderOutlivesTheSlideMosaicsItCameFrom) {
  AsyncLoaderConfig config;
  config.batch_size = 2;
  config.workers = 2;
  config.seed = 1;
  std::unique_ptr<AsyncLoader> loader;
  {
    const SlideMosaics mosaics(items(), recipe(true), std::make_shared<SlideCache>(2));
    config.sample_shape = mosaics.recipe().sample_shape();
    loader = std::make_unique<AsyncLoader>(config, mosaics.size(), mosaics.sample_function());
  }
  int64_t samples = 0;
  while (std::optional<Batch> batch = loader->next()) samples += int64_t(batch->labels().size());
  EXPECT_EQ(samples, 6);
}

TEST_F(SlideMosaicsTest, LevelTheSlideLacksIsSkippable) {
  const std::vector<SlideItem> all = items();
  MosaicRecipe r = recipe(false);
  r.tiles.level = 5;
  const SlideMosaics mosaics(all, r, std::make_shared<SlideCache>(4));
  try {
    mosaics.tiles(all[0]);
    FAIL() << "expected SkippableItemError";
  } catch (const SkippableItemError& e) {
    EXPECT_NE(std::string(e.what()).find("level 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(all[0].path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sg::data
