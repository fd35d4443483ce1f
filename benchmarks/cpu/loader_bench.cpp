// The slide loader on synthetic PANDA-like slides of realistic size (level 0 20,000 x 10,000,
// JPEG Q90, levels at downsample 1/4/16), the public recipe: 36 tiles of 256 px at level 1.
//
//   BM_PlainOpenSlideLoop        one thread: open the slide, read level 1, tile it, close. No
//                                augmentation, no mosaic: the floor a plain loop gets.
//   BM_Loader/workers/augment/cache
//                                AsyncLoader + SlideMosaics, batch 2: read, tile, (augment), mosaic,
//                                copy into the batch; one epoch per iteration; with the cache, the
//                                tiles of every slide are stored by an untimed first epoch.
// Counters: slides/s and tiles/s (36 per slide), both in wall-clock time.
//
// The slides are written once into $SG_BENCH_SLIDES (default: the system temp folder's
// slidegrade-bench-slides-20000x10000-8) by the same code as `slidegrade synth`; later runs reuse
// them. Run: build/sg_bench_cpu --benchmark_filter='Loader|OpenSlide'
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/async_loader.h"
#include "data/panda_dataset.h"
#include "data/slide_mosaics.h"
#include "data/slide_reader.h"
#include "data/synthetic_slides.h"
#include "data/tile_cache.h"
#include "data/tiler.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

constexpr int kSlides = 8;
const TileSpec kRecipe{36, 256, 1, false};

const std::vector<SlideItem>& bench_slides() {
  static const std::vector<SlideItem> items = [] {
    const char* from_env = std::getenv("SG_BENCH_SLIDES");
    const fs::path dir = from_env ? fs::path(from_env)
                                  : fs::temp_directory_path() / "slidegrade-bench-slides-20000x10000-8";
    if (!fs::exists(dir / "train.csv")) {
      SyntheticDatasetOptions options;
      options.train_slides = kSlides;
      options.test_slides = 0;
      options.width = 20000;
      options.height = 10000;
      options.seed = 2026;
      write_synthetic_dataset(dir.string(), options);
    }
    std::vector<SlideItem> out;
    for (const PandaRow& row : read_panda_train_csv((dir / "train.csv").string()).rows)
      out.push_back({row.image_id, panda_slide_path(dir, row.image_id).string(), row.isup_grade});
    return out;
  }();
  return items;
}

void set_rates(benchmark::State& state, int64_t slides) {
  state.counters["slides/s"] = benchmark::Counter(double(slides), benchmark::Counter::kIsRate);
  state.counters["tiles/s"] = benchmark::Counter(double(slides) * kRecipe.count, benchmark::Counter::kIsRate);
}

void BM_PlainOpenSlideLoop(benchmark::State& state) {
  const std::vector<SlideItem>& items = bench_slides();
  int64_t slides = 0;
  for (auto _ : state) {
    for (const SlideItem& item : items) {
      const Slide slide(item.path);
      TileSet tiles = tile_level(slide.read_level(kRecipe.level), kRecipe);
      benchmark::DoNotOptimize(tiles.pixels.data());
      ++slides;
    }
  }
  set_rates(state, slides);
}
BENCHMARK(BM_PlainOpenSlideLoop)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

// Args: workers, augment (0/1), cache (0/1).
void BM_Loader(benchmark::State& state) {
  const int workers = int(state.range(0));
  const bool augment = state.range(1) != 0, cached = state.range(2) != 0;
  MosaicRecipe recipe;
  recipe.tiles = kRecipe;
  recipe.shuffle_tiles = augment;
  recipe.augment = augment ? AugmentConfig{} : AugmentConfig::none();
  const fs::path cache_dir = fs::temp_directory_path() / "slidegrade-bench-tile-cache";
  std::shared_ptr<TileCache> cache;
  if (cached) {
    fs::remove_all(cache_dir);
    fs::create_directories(cache_dir);
    cache = std::make_shared<TileCache>(cache_dir);
  }
  const SlideMosaics mosaics(bench_slides(), recipe, std::make_shared<SlideCache>(kSlides), cache);
  AsyncLoaderConfig config;
  config.batch_size = 2;
  config.sample_shape = recipe.sample_shape();
  config.workers = workers;
  config.queue_depth = 2;
  config.seed = 1;
  AsyncLoader loader(config, mosaics.size(), mosaics.sample_function());
  int epoch = 0;
  if (cached) {  // fills the cache, untimed
    loader.start_epoch(epoch++);
    while (loader.next()) {
    }
  }
  int64_t slides = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (std::optional<Batch> batch = loader.next()) slides += batch->size();
  }
  set_rates(state, slides);
  state.counters["consumer_wait"] = loader.stats().wait_fraction();
  if (cached) {
    state.counters["cache_hits"] = double(cache->stats().hits);
    fs::remove_all(cache_dir);
  }
}
BENCHMARK(BM_Loader)
    ->ArgNames({"workers", "augment", "cache"})
    ->Args({1, 0, 0})
    ->Args({2, 0, 0})
    ->Args({1, 1, 0})
    ->Args({2, 1, 0})
    ->Args({1, 1, 1})
    ->Args({2, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace
}  // namespace sg::data
