#pragma once
// What the model sees of a slide: its N tiles of S px at level L (most tissue first), each tile
// augmented, laid out as a mosaic, the mosaic augmented; the sample function AsyncLoader calls.
//
//   slide path -> SlideCache (shared OpenSlide handles) -> read the level -> tile_level
//      (or the tile cache, keyed by the slide's path, size and mtime and the TileSpec)
//   -> optional random tile order (training) -> augment_tile per tile -> make_mosaic
//   -> augment_mosaic -> uint8 [rows*S, cols*S, 3] into the batch buffer.
//
// Every random choice comes from the request's seed, so a sample is the same bytes whatever the
// thread or the number of workers. A slide that is missing, not a slide, truncated, or lacks the
// level is a SkippableItemError naming the file: the loader reports it, counts it and goes on.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/async_loader.h"
#include "data/augment.h"
#include "data/image.h"
#include "data/slide_reader.h"
#include "data/tile_cache.h"
#include "data/tile_set.h"

namespace sg::data {

struct MosaicRecipe {
  TileSpec tiles;            // N tiles of S px at level L (half_offset: the shifted grid)
  int rows = 0, cols = 0;    // mosaic grid; 0: square (ceil(sqrt(N)))
  bool shuffle_tiles = false;  // random tile order within the mosaic (training)
  AugmentConfig augment = AugmentConfig::none();

  // [rows * S, cols * S, 3]
  SampleShape sample_shape() const;
};

struct SlideItem {
  std::string id;    // image_id
  std::string path;  // the slide file
  int label = -1;    // ISUP grade, -1 when unknown (test slides)
};

// The N tiles of a slide's level, most tissue first: reads the whole level and tiles it. Throws
// SkippableItemError for a slide OpenSlide cannot read or a level it does not have.
TileSet select_slide_tiles(const Slide& slide, const TileSpec& spec);

class SlideMosaics {
 public:
  // cache may be null (no tile cache).
  SlideMosaics(std::vector<SlideItem> items, MosaicRecipe recipe, std::shared_ptr<SlideCache> slides,
               std::shared_ptr<TileCache> cache = nullptr);

  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  const SlideItem& item(int64_t index) const { return items_.at(size_t(index)); }
  const MosaicRecipe& recipe() const { return recipe_; }

  // The slide's selected tiles (through the tile cache when there is one), before any augmentation.
  TileSet tiles(const SlideItem& item) const;
  // The augmented mosaic of an item for a seed.
  Image mosaic(int64_t index, uint64_t seed) const;
  // The AsyncLoader sample function: writes the mosaic into output.pixels, the grade into
  // output.label and, when the loader has target slots, the binned ordinal targets (label k sets
  // the first k of them to 1).
  void operator()(const SampleRequest& request, SampleOutput& output) const;
  // operator() as a SampleFunction that owns a copy of this object (the items, the recipe and the
  // shared caches), so a loader may outlive the SlideMosaics it came from: its workers can still be
  // reading slides while an exception unwinds the scope that made both.
  SampleFunction sample_function() const;

 private:
  std::vector<SlideItem> items_;
  MosaicRecipe recipe_;
  std::shared_ptr<SlideCache> slides_;
  std::shared_ptr<TileCache> cache_;
};

}  // namespace sg::data
