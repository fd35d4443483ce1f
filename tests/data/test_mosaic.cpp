// Mosaics: tile i lands in cell (i / cols, i % cols), spare cells are white (0 for masks),
// non-square grids, and split_mosaic undoes make_mosaic.
#include <gtest/gtest.h>

#include "data/mosaic.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

// count tiles of size px, tile i filled with value 10 + i (every value below 255).
TileSet numbered_tiles(int count, int size) {
  TileSet tiles;
  tiles.spec.count = count;
  tiles.spec.size = size;
  tiles.placements.resize(size_t(count));
  tiles.pixels.resize(size_t(count) * tiles.tile_bytes());
  for (int i = 0; i < count; ++i) std::fill(tiles.tile(i), tiles.tile(i) + tiles.tile_bytes(), uint8_t(10 + i));
  return tiles;
}

// Checks that every pixel of cell (r, c) of an S-px-cell mosaic equals `value`.
::testing::AssertionResult cell_is(const Image& mosaic, int size, int r, int c, uint8_t value) {
  for (int y = r * size; y < (r + 1) * size; ++y)
    for (int x = c * size; x < (c + 1) * size; ++x)
      for (int ch = 0; ch < mosaic.channels; ++ch)
        if (mosaic.at(x, y)[ch] != value)
          return ::testing::AssertionFailure() << "cell (" << r << ", " << c << ") pixel (" << x << ", " << y << ") is "
                                               << int(mosaic.at(x, y)[ch]) << ", expected " << int(value);
  return ::testing::AssertionSuccess();
}

TEST(Mosaic, PutsTileIAtRowIOverColsColIModCols) {
  const TileSet tiles = numbered_tiles(7, 5);
  const Image square = make_mosaic(tiles);  // ceil(sqrt(7)) = 3: 3 x 3, two white cells
  ASSERT_EQ(std::make_tuple(square.width, square.height, square.channels), std::make_tuple(15, 15, 3));
  for (int cell = 0; cell < 9; ++cell)
    EXPECT_TRUE(cell_is(square, 5, cell / 3, cell % 3, cell < 7 ? uint8_t(10 + cell) : uint8_t(255)));

  const Image wide = make_mosaic(tiles, 2, 0);  // 2 rows -> 4 columns
  ASSERT_EQ(std::make_pair(wide.width, wide.height), std::make_pair(20, 10));
  for (int cell = 0; cell < 8; ++cell)
    EXPECT_TRUE(cell_is(wide, 5, cell / 4, cell % 4, cell < 7 ? uint8_t(10 + cell) : uint8_t(255)));

  const Image tall = make_mosaic(tiles, 0, 2);  // 2 columns -> 4 rows
  ASSERT_EQ(std::make_pair(tall.width, tall.height), std::make_pair(10, 20));
  for (int cell = 0; cell < 7; ++cell) EXPECT_TRUE(cell_is(tall, 5, cell / 2, cell % 2, uint8_t(10 + cell)));

  const Image strip = make_mosaic(tiles, 1, 7);
  ASSERT_EQ(std::make_pair(strip.width, strip.height), std::make_pair(35, 5));
  for (int cell = 0; cell < 7; ++cell) EXPECT_TRUE(cell_is(strip, 5, 0, cell, uint8_t(10 + cell)));

  EXPECT_THROW(make_mosaic(tiles, 2, 3), Error);  // 6 cells for 7 tiles
}

TEST(Mosaic, SquareGridSizes) {
  EXPECT_EQ(mosaic_grid(36).rows, 6);
  EXPECT_EQ(mosaic_grid(36).cols, 6);
  EXPECT_EQ(mosaic_grid(37).rows, 7);
  EXPECT_EQ(mosaic_grid(64).cols, 8);
  EXPECT_EQ(mosaic_grid(1).rows, 1);
  EXPECT_EQ(mosaic_grid(0).rows, 0);
}

TEST(Mosaic, MaskMosaicIsOneChannelWithZeroFill) {
  MaskTiles masks;
  masks.size = 4;
  masks.labels.resize(3 * 16);
  for (int i = 0; i < 3; ++i)
    std::fill(masks.labels.begin() + i * 16, masks.labels.begin() + (i + 1) * 16, uint8_t(i + 1));
  const Image mosaic = make_mosaic(masks);
  ASSERT_EQ(std::make_tuple(mosaic.width, mosaic.height, mosaic.channels), std::make_tuple(8, 8, 1));
  for (int cell = 0; cell < 4; ++cell)
    EXPECT_TRUE(cell_is(mosaic, 4, cell / 2, cell % 2, uint8_t(cell < 3 ? cell + 1 : 0)));
}

TEST(Mosaic, SplitUndoesMake) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  TileSet tiles = numbered_tiles(10, 6);
  for (uint8_t& v : tiles.pixels) v = uint8_t(rng.integer(0, 255));
  for (auto [rows, cols] : {std::pair{0, 0}, std::pair{2, 5}, std::pair{3, 0}}) {
    const TileSet back = split_mosaic(make_mosaic(tiles, rows, cols), 10, 6, rows, cols);
    EXPECT_EQ(back.pixels, tiles.pixels) << rows << "x" << cols;
    EXPECT_EQ(back.spec.size, 6);
  }
  EXPECT_THROW(split_mosaic(make_mosaic(tiles), 10, 5), Error);  // wrong tile size for the image
}

}  // namespace
}  // namespace sg::data
