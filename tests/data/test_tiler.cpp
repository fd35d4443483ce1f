// The "N tiles of S px" tiler: the NumPy recipe's choices reproduced exactly (golden from
// tests/golden/tiling_reference.py), a brute-force padded-image reference on random sizes, the
// padding split, white fill, ties, the half-tile offset, shuffling, and mask tiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>

#include "data/tiler.h"
#include "tests/support/testing.h"

namespace sg::data {
namespace {

Image random_image(testing::Rng& rng, int width, int height, int channels, int lo = 0, int hi = 254) {
  Image image(width, height, channels);
  for (uint8_t& v : image.pixels) v = uint8_t(rng.integer(lo, hi));
  return image;
}

// The recipe done the slow, obvious way: build the padded image, cut every cell, sort all (sum, index).
struct Reference {
  std::vector<int64_t> indices;  // chosen cells (>= cells: white filler)
  std::vector<uint32_t> sums;
  std::vector<std::vector<uint8_t>> tiles;
};
Reference reference_tiling(const Image& level, int n, int size, int64_t top, int64_t bottom, int64_t left,
                           int64_t right) {
  const int64_t pw = level.width + left + right, ph = level.height + top + bottom;
  std::vector<uint8_t> padded(size_t(pw * ph * 3), 255);
  for (int y = 0; y < level.height; ++y)
    std::memcpy(&padded[size_t(((y + top) * pw + left) * 3)], level.row(y), level.row_bytes());
  const int64_t rows = ph / size, cols = pw / size;
  std::vector<std::vector<uint8_t>> cells;
  std::vector<std::pair<uint64_t, int64_t>> keyed;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      std::vector<uint8_t> t;
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size * 3; ++x) t.push_back(padded[size_t(((r * size + y) * pw + c * size) * 3 + x)]);
      uint64_t sum = 0;
      for (uint8_t v : t) sum += v;
      keyed.push_back({sum, int64_t(cells.size())});
      cells.push_back(std::move(t));
    }
  while (int64_t(cells.size()) < n) {
    cells.emplace_back(size_t(size) * size * 3, uint8_t(255));
    keyed.push_back({uint64_t(size) * size * 3 * 255, int64_t(cells.size()) - 1});
  }
  std::sort(keyed.begin(), keyed.end());
  Reference ref;
  for (int i = 0; i < n; ++i) {
    ref.indices.push_back(keyed[size_t(i)].second);
    ref.sums.push_back(uint32_t(keyed[size_t(i)].first));
    ref.tiles.push_back(cells[size_t(keyed[size_t(i)].second)]);
  }
  return ref;
}

int64_t cell_index(const TilePlacement& p, int64_t cols, int64_t filler_index) {
  return p.grid_row < 0 ? filler_index : p.grid_row * cols + p.grid_col;
}

std::vector<uint8_t> tile_bytes(const TileSet& t, int i) { return {t.tile(i), t.tile(i) + t.tile_bytes()}; }

TEST(TilerGolden, ReproducesTheNumPyRecipe) {
  const testing::GoldenFile golden("tiling_reference");
  const Tensor image_t = golden.tensor("image", DType::f32);
  ASSERT_EQ(image_t.rank(), 3);
  Image image(int(image_t.shape()[1]), int(image_t.shape()[0]), 3);
  const std::vector<float> values = image_t.to_floats();
  for (size_t i = 0; i < values.size(); ++i) image.pixels[i] = uint8_t(values[i]);

  for (const std::string name : {"n16_s32", "n100_s32", "n16_s32_half", "n9_s50_half", "n12_s50"}) {
    SCOPED_TRACE(name);
    const std::vector<double> spec_v = golden.doubles(name + "/spec"), pad = golden.doubles(name + "/pad"),
                              grid_v = golden.doubles(name + "/grid"), indices = golden.doubles(name + "/indices"),
                              sums = golden.doubles(name + "/sums");
    TileSpec spec;
    spec.count = int(spec_v[0]);
    spec.size = int(spec_v[1]);
    spec.half_offset = spec_v[2] != 0;
    const TileGrid grid = tile_grid(image.width, image.height, spec);
    EXPECT_EQ(std::vector<double>(
                  {double(grid.pad_top), double(grid.pad_bottom), double(grid.pad_left), double(grid.pad_right)}),
              pad);
    EXPECT_EQ(std::vector<double>({double(grid.rows), double(grid.cols)}), grid_v);

    const TileSet tiles = tile_level(image, spec);
    ASSERT_EQ(tiles.placements.size(), indices.size());
    int64_t next_filler = grid.cells();
    for (size_t i = 0; i < indices.size(); ++i) {
      const TilePlacement& p = tiles.placements[i];
      const int64_t index = cell_index(p, grid.cols, p.grid_row < 0 ? next_filler++ : -1);
      EXPECT_EQ(double(index), indices[i]) << "tile " << i;
      EXPECT_EQ(double(p.pixel_sum), sums[i]) << "tile " << i;
      if (p.grid_row >= 0) {
        EXPECT_EQ(p.x, int64_t(p.grid_col) * spec.size - grid.pad_left);
        EXPECT_EQ(p.y, int64_t(p.grid_row) * spec.size - grid.pad_top);
      }
    }
    if (golden.has(name + "/tiles")) {
      const std::vector<double> expected = golden.doubles(name + "/tiles");
      ASSERT_EQ(expected.size(), tiles.pixels.size());
      size_t mismatches = 0;
      for (size_t i = 0; i < expected.size(); ++i) mismatches += double(tiles.pixels[i]) != expected[i];
      EXPECT_EQ(mismatches, 0u);
    } else {  // tiles left out of the golden: the slow reference cuts them from the padded image
      const Reference ref =
          reference_tiling(image, spec.count, spec.size, grid.pad_top, grid.pad_bottom, grid.pad_left, grid.pad_right);
      for (int i = 0; i < spec.count; ++i) EXPECT_EQ(tile_bytes(tiles, i), ref.tiles[size_t(i)]) << "tile " << i;
    }
  }
}

TEST(Tiler, MatchesAPaddedImageReferenceOnRandomLevels) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (int trial = 0; trial < 40; ++trial) {
    const int width = int(rng.integer(1, 150)), height = int(rng.integer(1, 150));
    TileSpec spec;
    spec.size = int(rng.integer(1, 40));
    spec.count = int(rng.integer(1, 30));
    spec.half_offset = rng.integer(0, 1) == 1;
    // Few distinct values so that equal sums (ties) happen.
    const Image level = random_image(rng, width, height, 3, 250, 255);
    SCOPED_TRACE(::testing::Message() << width << "x" << height << " S=" << spec.size << " N=" << spec.count
                                      << " half=" << spec.half_offset);
    const TileGrid grid = tile_grid(width, height, spec);
    const Reference ref =
        reference_tiling(level, spec.count, spec.size, grid.pad_top, grid.pad_bottom, grid.pad_left, grid.pad_right);
    const TileSet tiles = tile_level(level, spec);
    EXPECT_EQ(tiles.level_width, width);
    EXPECT_EQ(tiles.level_height, height);
    int64_t next_filler = grid.cells();
    for (int i = 0; i < spec.count; ++i) {
      const TilePlacement& p = tiles.placements[size_t(i)];
      EXPECT_EQ(cell_index(p, grid.cols, p.grid_row < 0 ? next_filler++ : -1), ref.indices[size_t(i)]) << i;
      EXPECT_EQ(p.pixel_sum, ref.sums[size_t(i)]) << i;
      EXPECT_EQ(tile_bytes(tiles, i), ref.tiles[size_t(i)]) << i;
    }
  }
}

TEST(Tiler, SplitsOddPaddingFloorBeforeRestAfter) {
  const TileGrid grid = tile_grid(301, 203, TileSpec{.count = 1, .size = 32});
  // 203 % 32 = 11: 21 rows of padding, 10 before and 11 after; 301 % 32 = 13: 19 columns, 9 + 10.
  EXPECT_EQ(std::make_tuple(grid.pad_top, grid.pad_bottom, grid.pad_left, grid.pad_right),
            std::make_tuple(10, 11, 9, 10));
  EXPECT_EQ(std::make_pair(grid.rows, grid.cols), std::make_pair(int64_t(7), int64_t(10)));
  const TileGrid exact = tile_grid(64, 96, TileSpec{.count = 1, .size = 32});
  EXPECT_EQ(std::make_tuple(exact.pad_top, exact.pad_bottom, exact.pad_left, exact.pad_right),
            std::make_tuple(0, 0, 0, 0));

  // The pixels: a 33 x 33 level at S = 32 pads 31 = 15 before + 16 after on each axis. Level
  // pixels are below 255, so white marks padding.
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image level = random_image(rng, 33, 33, 3, 0, 200);
  const TileSet tiles = tile_level(level, TileSpec{.count = 4, .size = 32});
  for (int i = 0; i < 4; ++i) {
    const TilePlacement& p = tiles.placements[size_t(i)];
    EXPECT_EQ(p.x, p.grid_col == 0 ? -15 : 17);
    EXPECT_EQ(p.y, p.grid_row == 0 ? -15 : 17);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const int64_t lx = p.x + x, ly = p.y + y;
        const bool inside = lx >= 0 && lx < 33 && ly >= 0 && ly < 33;
        const uint8_t* t = tiles.tile(i) + (y * 32 + x) * 3;
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(t[c], inside ? level.at(int(lx), int(ly))[c] : 255)
              << "tile " << i << " (" << x << ", " << y << ")";
      }
  }
}

TEST(Tiler, AddsWhiteTilesWhenTooFewCells) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image level = random_image(rng, 40, 40, 3, 0, 200);  // 2 x 2 cells of 32 px
  const TileSet tiles = tile_level(level, TileSpec{.count = 6, .size = 32});
  ASSERT_EQ(tiles.placements.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const TilePlacement& p = tiles.placements[size_t(i)];
    const bool filler = i >= 4;
    EXPECT_EQ(p.grid_row < 0, filler) << i;
    EXPECT_EQ(p.grid_col < 0, filler) << i;
    if (filler) {
      EXPECT_EQ(p.pixel_sum, white_tile_sum(32));
      EXPECT_TRUE(std::all_of(tiles.tile(i), tiles.tile(i) + tiles.tile_bytes(), [](uint8_t v) { return v == 255; }));
    } else {
      EXPECT_LT(p.pixel_sum, white_tile_sum(32));
    }
  }
  EXPECT_EQ(white_tile_sum(32), 32u * 32 * 3 * 255);
}

TEST(Tiler, TiesKeepRowMajorOrder) {
  const Image white(100, 70, 3, 255);  // 16 px: 7 x 5 cells, all with the same sum
  const TileSet tiles = tile_level(white, TileSpec{.count = 38, .size = 16});
  const TileGrid grid = tile_grid(100, 70, tiles.spec);
  ASSERT_EQ(grid.cells(), 35);
  for (int i = 0; i < 38; ++i) {
    const TilePlacement& p = tiles.placements[size_t(i)];
    if (i < 35) {
      EXPECT_EQ(p.grid_row, i / 7) << i;
      EXPECT_EQ(p.grid_col, i % 7) << i;
    } else {
      EXPECT_EQ(p.grid_row, -1) << i;
    }
  }
  // One darker cell comes first; the rest keep row-major order.
  Image level = white;
  level.at(50, 40)[0] = 0;  // cell (row (40 + 5) / 16 = 2, col (50 + 6) / 16 = 3): padding 5 top, 6 left
  const TileSet one = tile_level(level, TileSpec{.count = 3, .size = 16});
  EXPECT_EQ(std::make_pair(one.placements[0].grid_row, one.placements[0].grid_col), std::make_pair(2, 3));
  EXPECT_EQ(std::make_pair(one.placements[1].grid_row, one.placements[1].grid_col), std::make_pair(0, 0));
  EXPECT_EQ(std::make_pair(one.placements[2].grid_row, one.placements[2].grid_col), std::make_pair(0, 1));
}

TEST(Tiler, HalfOffsetShiftsTheGridByHalfATile) {
  for (int size : {1, 2, 7, 16, 31, 32}) {
    for (int length = 0; length < 3 * size + 2; ++length) {
      const TileGrid plain = tile_grid(length, length + 1, TileSpec{.size = size});
      const TileGrid half = tile_grid(length, length + 1, TileSpec{.size = size, .half_offset = true});
      SCOPED_TRACE(::testing::Message() << "S=" << size << " L=" << length);
      for (const TileGrid* g : {&plain, &half}) {
        EXPECT_EQ((length + g->pad_left + g->pad_right) % size, 0);
        EXPECT_EQ((length + 1 + g->pad_top + g->pad_bottom) % size, 0);
        EXPECT_LT(g->pad_left, size);  // never a whole tile of padding on one side
        EXPECT_LT(g->pad_right, size);
      }
      EXPECT_EQ(half.tile_x(0), plain.tile_x(0) - size / 2);
      EXPECT_EQ(half.tile_y(0), plain.tile_y(0) - size / 2);
    }
  }
  // A dark square exactly on one half-offset cell is that cell's whole content.
  Image level(128, 96, 3, 255);  // S = 32: no plain padding, half offset pads 16 before
  for (int y = 16; y < 48; ++y)
    for (int x = 48; x < 80; ++x) std::fill(level.at(x, y), level.at(x, y) + 3, uint8_t(10));
  const TileSet half = tile_level(level, TileSpec{.count = 1, .size = 32, .half_offset = true});
  EXPECT_EQ(std::make_tuple(half.placements[0].x, half.placements[0].y), std::make_tuple(48, 16));
  EXPECT_EQ(std::make_pair(half.placements[0].grid_row, half.placements[0].grid_col), std::make_pair(1, 2));
  EXPECT_EQ(half.placements[0].pixel_sum, 32u * 32 * 3 * 10);
  const TileSet plain = tile_level(level, TileSpec{.count = 1, .size = 32});
  EXPECT_GT(plain.placements[0].pixel_sum, 32u * 32 * 3 * 10);  // the plain grid cuts the square in four
}

TEST(Tiler, ShuffleIsAPermutationFixedPerSeed) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image level = random_image(rng, 200, 150, 3);
  const TileSpec spec{.count = 20, .size = 24};
  const TileSet sorted = tile_level(level, spec);
  const TileSet a = tile_level(level, spec, TilerOptions{.shuffle = true, .seed = 7});
  const TileSet b = tile_level(level, spec, TilerOptions{.shuffle = true, .seed = 7});
  const TileSet c = tile_level(level, spec, TilerOptions{.shuffle = true, .seed = 8});
  EXPECT_EQ(a.placements, b.placements);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(a.placements, c.placements);  // 1 / 20! to be equal by chance
  EXPECT_NE(a.placements, sorted.placements);
  auto key = [](const TilePlacement& p) { return std::make_tuple(p.grid_row, p.grid_col, p.pixel_sum); };
  std::multiset<std::tuple<int, int, uint32_t>> want, got;
  for (const TilePlacement& p : sorted.placements) want.insert(key(p));
  for (const TilePlacement& p : a.placements) got.insert(key(p));
  EXPECT_EQ(got, want);
  // Each tile's pixels moved with its placement.
  for (int i = 0; i < spec.count; ++i) {
    const auto it = std::find(sorted.placements.begin(), sorted.placements.end(), a.placements[size_t(i)]);
    ASSERT_NE(it, sorted.placements.end());
    EXPECT_EQ(tile_bytes(a, i), tile_bytes(sorted, int(it - sorted.placements.begin()))) << i;
  }
  // Every position gets every tile under some seed (the shuffle is not stuck).
  std::set<std::pair<int, int>> first;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    TileSet t = sorted;
    shuffle_tiles(t, seed);
    first.insert({t.placements[0].grid_row, t.placements[0].grid_col});
  }
  EXPECT_EQ(first.size(), size_t(spec.count));
}

TEST(Tiler, MaskTilesFollowTheSlideGeometry) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Image level = random_image(rng, 90, 70, 3);
  const TileSpec spec{.count = 15, .size = 32, .half_offset = true};  // 12 cells: 3 white fillers
  const TileSet tiles = tile_level(level, spec);
  const Image labels = random_image(rng, 90, 70, 1, 1, 5);  // labels 1..5: 0 marks padding
  Image rgb_labels(90, 70, 3);
  for (size_t i = 0; i < labels.pixels.size(); ++i) {
    rgb_labels.pixels[i * 3] = labels.pixels[i];
    rgb_labels.pixels[i * 3 + 1] = 200;
    rgb_labels.pixels[i * 3 + 2] = 100;
  }
  const MaskTiles from_grey = tile_mask(labels, tiles), from_rgb = tile_mask(rgb_labels, tiles);
  EXPECT_EQ(from_grey.labels, from_rgb.labels);  // RGB masks use R
  ASSERT_EQ(from_grey.count(), 15);
  for (int i = 0; i < 15; ++i) {
    const TilePlacement& p = tiles.placements[size_t(i)];
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const int64_t lx = p.x + x, ly = p.y + y;
        const bool inside = p.grid_row >= 0 && lx >= 0 && lx < 90 && ly >= 0 && ly < 70;
        ASSERT_EQ(from_grey.tile(i)[y * 32 + x], inside ? labels.at(int(lx), int(ly))[0] : 0)
            << "tile " << i << " (" << x << ", " << y << ")";
      }
  }
}

TEST(Tiler, RejectsAMaskOfAnotherSizeNamingBoth) {
  const Image level(301, 203, 3, 255);
  const TileSet tiles = tile_level(level, TileSpec{.count = 4, .size = 32});
  try {
    tile_mask(Image(300, 200, 1), tiles);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("300x200"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("301x203"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(tile_mask(Image(301, 203, 1), tiles));
}

TEST(Tiler, RejectsBadInput) {
  EXPECT_THROW(tile_level(Image(10, 10, 4), TileSpec{.count = 1, .size = 8}), Error);
  EXPECT_THROW(tile_level(Image(10, 10, 3), TileSpec{.count = 0, .size = 8}), Error);
  EXPECT_THROW(tile_level(Image(10, 10, 3), TileSpec{.count = 1, .size = 0}), Error);
  EXPECT_THROW(tile_level(Image(10, 10, 3), TileSpec{.count = 1, .size = 2369}), Error);  // sum past uint32
  EXPECT_NO_THROW(tile_level(Image(10, 10, 3), TileSpec{.count = 1, .size = 2368}));
}

}  // namespace
}  // namespace sg::data
