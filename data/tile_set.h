#pragma once
// The tiles chosen from one slide: what the tiler hands to augmentation, the mosaic and the
// tile cache. See docs/panda_and_openslide.md section 2 for the "N tiles of S px at level L" recipe.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sg::data {

// "N tiles of S px at level L", optionally with the grid shifted by half a tile.
struct TileSpec {
  int count = 36;     // N
  int size = 256;     // S, pixels at `level`
  int level = 1;      // OpenSlide level (0 = full resolution)
  bool half_offset = false;

  bool operator==(const TileSpec&) const = default;
};

// Where one chosen tile came from. Coordinates are in pixels of the tiled level, relative to the
// level's top-left corner; they are negative or past the edge where the tile covers padding.
struct TilePlacement {
  int grid_row = -1;      // position in the padded grid; -1 for a white tile added because the
  int grid_col = -1;      // slide had fewer than N grid cells
  int64_t x = 0;          // top-left, level pixels
  int64_t y = 0;
  uint32_t pixel_sum = 0;  // sum of all S*S*3 RGB values: smaller = more tissue

  bool operator==(const TilePlacement&) const = default;
};

// N tiles, most tissue first: pixels [N, S, S, 3] RGB, uint8.
struct TileSet {
  TileSpec spec;
  int64_t level_width = 0;   // size of the level the tiles were cut from (a mask cut with the
  int64_t level_height = 0;  // same geometry must have this size)
  std::vector<TilePlacement> placements;  // N entries, in the same order as the pixels
  std::vector<uint8_t> pixels;

  size_t tile_bytes() const { return static_cast<size_t>(spec.size) * spec.size * 3; }
  uint8_t* tile(int i) { return pixels.data() + static_cast<size_t>(i) * tile_bytes(); }
  const uint8_t* tile(int i) const { return pixels.data() + static_cast<size_t>(i) * tile_bytes(); }
};

}  // namespace sg::data
