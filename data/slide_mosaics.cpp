#include "data/slide_mosaics.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "data/errors.h"
#include "data/mosaic.h"
#include "data/tiler.h"

namespace sg::data {

namespace {
// Independent streams of one sample's seed: the tile order, each tile, the mosaic.
constexpr int kShuffleStream = 1, kTileStream = 2, kMosaicStream = 3;
}  // namespace

SampleShape MosaicRecipe::sample_shape() const {
  const MosaicGrid grid = mosaic_grid(tiles.count, rows, cols);
  return SampleShape{grid.rows * tiles.size, grid.cols * tiles.size, 3};
}

TileSet select_slide_tiles(const Slide& slide, const TileSpec& spec) {
  if (spec.level < 0 || spec.level >= slide.level_count())
    throw SkippableItemError(detail::concat(slide.path(), ": has ", slide.level_count(), " levels (0..",
                                            slide.level_count() - 1, "); the tiling asks for level ", spec.level));
  try {
    return tile_level(slide.read_level(spec.level), spec);
  } catch (const SkippableItemError&) {
    throw;
  } catch (const Error& e) {
    // A truncated or damaged file fails only when its tiles are decoded: the slide is bad, the run is not.
    throw SkippableItemError(e.what());
  }
}

SlideMosaics::SlideMosaics(std::vector<SlideItem> items, MosaicRecipe recipe, std::shared_ptr<SlideCache> slides,
                           std::shared_ptr<TileCache> cache)
    : items_(std::move(items)), recipe_(std::move(recipe)), slides_(std::move(slides)), cache_(std::move(cache)) {
  SG_CHECK(slides_, "SlideMosaics: no SlideCache");
  SG_CHECK(recipe_.tiles.count > 0 && recipe_.tiles.size > 0, "SlideMosaics: the tiling needs N > 0 tiles of S > 0 px, got ",
           recipe_.tiles.count, " x ", recipe_.tiles.size);
}

TileSet SlideMosaics::tiles(const SlideItem& item) const {
  std::error_code error;
  if (!std::filesystem::is_regular_file(item.path, error))
    throw SkippableItemError(detail::concat(item.path, ": slide ", item.id, " is listed but the file is missing"));
  std::string key;
  if (cache_) {
    key = tile_cache_key(item.path);
    if (std::optional<TileSet> cached = cache_->load(item.id, recipe_.tiles, key)) return std::move(*cached);
  }
  std::shared_ptr<Slide> slide;
  try {
    slide = slides_->get(item.path);
  } catch (const Error& e) {
    throw SkippableItemError(e.what());
  }
  TileSet tiles = select_slide_tiles(*slide, recipe_.tiles);
  if (cache_) cache_->store(item.id, key, tiles);
  return tiles;
}

Image SlideMosaics::mosaic(int64_t index, uint64_t seed) const {
  TileSet tiles = this->tiles(item(index));
  if (recipe_.shuffle_tiles) shuffle_tiles(tiles, sample_seed(seed, kShuffleStream, 0));
  const int size = tiles.spec.size;
  Image tile(size, size, 3);
  for (int i = 0; i < tiles.spec.count; ++i) {
    std::memcpy(tile.pixels.data(), tiles.tile(i), tiles.tile_bytes());
    augment_tile(tile, recipe_.augment, sample_seed(seed, kTileStream, i));
    SG_CHECK(tile.width == size && tile.height == size && tile.channels == 3,
             "SlideMosaics: augmentation changed a tile's size");
    std::memcpy(tiles.tile(i), tile.pixels.data(), tiles.tile_bytes());
  }
  Image mosaic = make_mosaic(tiles, recipe_.rows, recipe_.cols);
  augment_mosaic(mosaic, recipe_.augment, sample_seed(seed, kMosaicStream, 0));
  return mosaic;
}

void SlideMosaics::operator()(const SampleRequest& request, SampleOutput& output) const {
  const SlideItem& slide = item(request.item);
  output.name = slide.path;
  const Image image = mosaic(request.item, request.seed);
  SG_CHECK(image.pixels.size() == output.pixels.size(), slide.path, ": the mosaic is ", image.width, "x", image.height,
           "x", image.channels, " but the loader's sample shape holds ", output.pixels.size(), " bytes");
  std::copy(image.pixels.begin(), image.pixels.end(), output.pixels.begin());
  output.label = slide.label;
  for (size_t k = 0; k < output.targets.size(); ++k) output.targets[k] = int(k) < slide.label ? 1.0f : 0.0f;
}

SampleFunction SlideMosaics::sample_function() const {
  // Found by the AddressSanitizer build: capturing `this` let a training run that stopped with an
  // error free the SlideMosaics while the loader's workers were still using it.
  return [self = std::make_shared<const SlideMosaics>(*this)](const SampleRequest& request, SampleOutput& output) {
    (*self)(request, output);
  };
}

}  // namespace sg::data
