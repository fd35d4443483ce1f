#pragma once
// The "N tiles of S px" recipe (docs/panda_and_openslide.md, section 2) on one whole pyramid level
// held in memory:
//
//   1. pad height and width up to a multiple of S with white (255): of the padding P along an
//      axis, floor(P / 2) goes before (top / left) and the rest after;
//   2. cut the padded level into S x S tiles in row-major order (cell index = row * cols + col);
//   3. if there are fewer than N cells, append white tiles (indices cols*rows, cols*rows+1, ...);
//   4. keep the N tiles with the smallest sum of their S*S*3 RGB values (most tissue first),
//      ordered by (sum, index): a stable sort, so equal sums keep row-major order and white
//      filler tiles come after every real cell.
//
// Half-tile offset (TileSpec::half_offset): the grid lines move by floor(S / 2) up and left
// relative to the plain grid. Along an axis of length L with plain padding P = (S - L % S) % S:
//     before = floor(P / 2) + floor(S / 2)
//     after  = (S - (L + before) % S) % S      (the least padding that completes the last tile)
// so each tile's top-left is the plain grid's minus floor(S / 2), and neither side pads a
// whole tile. Steps 2-4 are unchanged. The golden tests/golden/tiling_reference.py writes both
// variants with NumPy.
//
// The level is never copied or padded in memory: tile sums are taken from the unpadded pixels,
// each padding pixel counting as 3 * 255, and only the N chosen tiles are copied out.
#include <cstdint>
#include <vector>

#include "data/image.h"
#include "data/tile_set.h"

namespace sg::data {

// Where the padded grid lies over a level of width x height.
struct TileGrid {
  int size = 0;          // S
  int64_t pad_top = 0;   // padding rows before the level (the grid's first row starts at -pad_top)
  int64_t pad_left = 0;  // padding columns before the level
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  int64_t rows = 0;  // (height + pad_top + pad_bottom) / S
  int64_t cols = 0;

  int64_t cells() const { return rows * cols; }
  int64_t tile_x(int64_t col) const { return col * size - pad_left; }  // level pixels
  int64_t tile_y(int64_t row) const { return row * size - pad_top; }
};

// The grid of `spec` (size and half_offset) over a width x height level.
TileGrid tile_grid(int64_t width, int64_t height, const TileSpec& spec);

// The sum of all S*S*3 values of a white tile: the largest sum a tile can have.
uint32_t white_tile_sum(int size);

// The largest tile size S: a white tile's sum S*S*3*255 must fit in uint32.
inline constexpr int kMaxTileSize = 2368;
// The most tiles the command line and the Python package accept for a mosaic (64 x 64 of them).
inline constexpr int kMaxTileCount = 4096;

struct TilerOptions {
  // Training: put the chosen tiles in a random order (a permutation drawn from `seed`; the same
  // seed gives the same order on every machine). Which tiles are chosen does not change.
  bool shuffle = false;
  uint64_t seed = 0;
};

// Tiles an RGB level (channels == 3) with spec.count and spec.size (spec.level is recorded,
// not used: `level` is that level already read). Throws sg::Error for a non-RGB image, N < 1,
// or S outside [1, 2368] (a tile's sum must fit in uint32).
TileSet tile_level(const Image& level, const TileSpec& spec, const TilerOptions& options = {});

// Puts the tiles (pixels and placements together) in a random order drawn from `seed`:
// Fisher-Yates driven by Philox (core/philox.h), so it is the same everywhere for a seed.
void shuffle_tiles(TileSet& tiles, uint64_t seed);

// Label tiles cut with the same geometry as a TileSet: [N, S, S] uint8, one label per pixel.
struct MaskTiles {
  int size = 0;
  std::vector<uint8_t> labels;

  int count() const { return size ? int(labels.size() / (size_t(size) * size)) : 0; }
  size_t tile_bytes() const { return size_t(size) * size; }
  const uint8_t* tile(int i) const { return labels.data() + size_t(i) * tile_bytes(); }
};

// Cuts the tiles of `chosen` from a label mask level: one channel, or the R channel of an RGB(A)
// mask (PANDA keeps labels in R). Padding and white filler tiles are label 0. Throws sg::Error
// naming both sizes when the mask's size differs from the level `chosen` was cut from.
MaskTiles tile_mask(const Image& mask_level, const TileSet& chosen);

}  // namespace sg::data
