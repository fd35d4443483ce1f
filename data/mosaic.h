#pragma once
// Tiles laid out as one image, the way the PANDA recipes feed the network (36 x 256 px ->
// a 6 x 6 = 1536^2 mosaic): tile i goes to grid cell (i / cols, i % cols); cells past the last
// tile are white (label 0 for masks).
#include "data/image.h"
#include "data/tile_set.h"
#include "data/tiler.h"

namespace sg::data {

// The grid for `count` tiles: rows = cols = ceil(sqrt(count)) when both are 0; one of them 0
// means the fewest of it that holds every tile. Throws when rows * cols < count.
struct MosaicGrid {
  int rows = 0;
  int cols = 0;
};
MosaicGrid mosaic_grid(int count, int rows = 0, int cols = 0);

// RGB mosaic of rows*S x cols*S pixels (height x width).
Image make_mosaic(const TileSet& tiles, int rows = 0, int cols = 0);
// One-channel mosaic of mask labels, the same layout.
Image make_mosaic(const MaskTiles& tiles, int rows = 0, int cols = 0);

// The inverse of make_mosaic: the first `count` S x S tiles of an RGB mosaic laid out as
// make_mosaic lays them out (e.g. to augment tiles again after a mosaic-level operation). The
// placements are unknown (grid -1); spec gets count and size. Throws when the mosaic is not
// rows*S x cols*S RGB.
TileSet split_mosaic(const Image& mosaic, int count, int size, int rows = 0, int cols = 0);

}  // namespace sg::data
