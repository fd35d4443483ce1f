#include "data/mosaic.h"

#include <cstring>

namespace sg::data {
namespace {

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Copies `count` tiles [count, S, S, channels] into the cells of `mosaic` (already filled).
void place_tiles(const uint8_t* tiles, int count, int size, MosaicGrid grid, Image& mosaic) {
  const size_t tile_row = size_t(size) * mosaic.channels, tile_bytes = tile_row * size;
  for (int i = 0; i < count; ++i) {
    const int cell_y = (i / grid.cols) * size, cell_x = (i % grid.cols) * size;
    for (int r = 0; r < size; ++r)
      std::memcpy(mosaic.at(cell_x, cell_y + r), tiles + size_t(i) * tile_bytes + size_t(r) * tile_row, tile_row);
  }
}

}  // namespace

MosaicGrid mosaic_grid(int count, int rows, int cols) {
  SG_CHECK(count >= 0 && rows >= 0 && cols >= 0, "mosaic_grid: bad count ", count, " or grid ", rows, "x", cols);
  if (rows == 0 && cols == 0) {
    while (int64_t(rows) * rows < count) ++rows;  // ceil(sqrt(count)) without floating point
    cols = rows;
  } else if (rows == 0) {
    rows = ceil_div(count, cols);
  } else if (cols == 0) {
    cols = ceil_div(count, rows);
  }
  SG_CHECK(int64_t(rows) * cols >= count, "mosaic: a ", rows, "x", cols, " grid cannot hold ", count, " tiles");
  return {rows, cols};
}

Image make_mosaic(const TileSet& tiles, int rows, int cols) {
  const int count = int(tiles.placements.size()), size = tiles.spec.size;
  SG_CHECK(tiles.pixels.size() == size_t(count) * tiles.tile_bytes(), "make_mosaic: ", count, " placements but ",
           tiles.pixels.size(), " pixel bytes for ", size, " px tiles");
  const MosaicGrid grid = mosaic_grid(count, rows, cols);
  Image mosaic(grid.cols * size, grid.rows * size, 3, 255);
  place_tiles(tiles.pixels.data(), count, size, grid, mosaic);
  return mosaic;
}

Image make_mosaic(const MaskTiles& tiles, int rows, int cols) {
  const MosaicGrid grid = mosaic_grid(tiles.count(), rows, cols);
  Image mosaic(grid.cols * tiles.size, grid.rows * tiles.size, 1, 0);
  place_tiles(tiles.labels.data(), tiles.count(), tiles.size, grid, mosaic);
  return mosaic;
}

TileSet split_mosaic(const Image& mosaic, int count, int size, int rows, int cols) {
  SG_CHECK(size >= 1, "split_mosaic: tile size must be positive, got ", size);
  const MosaicGrid grid = mosaic_grid(count, rows, cols);
  SG_CHECK(mosaic.channels == 3 && mosaic.width == grid.cols * size && mosaic.height == grid.rows * size,
           "split_mosaic: expected a ", grid.cols * size, "x", grid.rows * size, " RGB mosaic (", grid.rows, "x",
           grid.cols, " tiles of ", size, " px), got ", mosaic.width, "x", mosaic.height, "x", mosaic.channels);
  TileSet tiles;
  tiles.spec.count = count;
  tiles.spec.size = size;
  tiles.placements.resize(size_t(count));
  tiles.pixels.resize(size_t(count) * tiles.tile_bytes());
  const size_t tile_row = size_t(size) * 3;
  for (int i = 0; i < count; ++i) {
    const int cell_y = (i / grid.cols) * size, cell_x = (i % grid.cols) * size;
    for (int r = 0; r < size; ++r)
      std::memcpy(tiles.tile(i) + size_t(r) * tile_row, mosaic.at(cell_x, cell_y + r), tile_row);
  }
  return tiles;
}

}  // namespace sg::data
