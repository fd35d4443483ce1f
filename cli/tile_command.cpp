// slidegrade tile: what the model sees of one slide. Tiles a slide with the "N tiles of S px at
// level L" recipe, writes the mosaic as a PNG (and optionally each tile, and the label mask cut
// with the same geometry as a colour PNG), and prints where each tile came from.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/image_io.h"
#include "data/mosaic.h"
#include "data/slide_mosaics.h"
#include "data/slide_reader.h"
#include "data/tiler.h"
#include "data/tissue_detection.h"

namespace sg::cli {

namespace {
struct TileOptions {
  std::string slide, out = "mosaic.png", tiles_dir, mask, mask_out;
  data::TileSpec spec;
  int rows = 0, cols = 0;
  bool augment = false;
  uint64_t seed = 0;
};

// PANDA mask labels as colours a person can tell apart (Radboud 0-5, Karolinska 0-2).
data::Image colour_labels(const data::Image& labels) {
  static const uint8_t palette[6][3] = {{255, 255, 255}, {120, 200, 120}, {60, 120, 220},
                                        {250, 200, 40},  {240, 120, 30},  {200, 20, 30}};
  data::Image rgb(labels.width, labels.height, 3);
  for (size_t i = 0; i < labels.pixels.size(); ++i) {
    const uint8_t label = labels.pixels[i];
    const uint8_t* colour = label < 6 ? palette[label] : palette[5];
    std::copy(colour, colour + 3, rgb.pixels.begin() + std::ptrdiff_t(i * 3));
  }
  return rgb;
}

int run_tile(const TileOptions& o) {
  const data::Slide slide(o.slide);
  data::TileSet tiles = data::select_slide_tiles(slide, o.spec);
  const data::LevelSize level = slide.level_dimensions(o.spec.level);
  std::printf("%s: %s, %d levels, level %d is %lldx%lld (downsample %.4f)\n", o.slide.c_str(),
              slide.vendor().c_str(), slide.level_count(), o.spec.level, static_cast<long long>(level.width),
              static_cast<long long>(level.height), slide.level_downsample(o.spec.level));
  const data::TileGrid grid = data::tile_grid(level.width, level.height, o.spec);
  std::printf("grid %lldx%lld of %d px tiles (%lld cells), keeping the %d with the most tissue%s\n",
              static_cast<long long>(grid.rows), static_cast<long long>(grid.cols),
              o.spec.size, static_cast<long long>(grid.cells()), o.spec.count,
              o.spec.half_offset ? ", grid shifted by half a tile" : "");
  const uint32_t white = data::white_tile_sum(o.spec.size);
  // Tissue (HSV saturation, Otsu, morphology, pen ink left out) on the smallest level: how much of
  // each chosen tile is tissue, and whether the slide has N tiles' worth at all.
  const int thumbnail_level = slide.level_count() - 1;
  const data::TissueMask tissue = data::detect_tissue(slide.read_level(thumbnail_level),
                                                      slide.level_downsample(thumbnail_level));
  const double level_downsample = slide.level_downsample(o.spec.level);
  const auto tile_tissue = [&](const data::TilePlacement& p) {
    if (p.grid_row < 0) return 0.0;
    const double side = o.spec.size * level_downsample;
    return tissue.tissue_fraction(int64_t(double(p.x) * level_downsample), int64_t(double(p.y) * level_downsample),
                                  int64_t(side), int64_t(side));
  };
  int with_tissue = 0;
  for (const data::TilePlacement& p : tiles.placements) with_tissue += tile_tissue(p) >= 0.05 ? 1 : 0;
  std::printf("tissue: %.1f%% of the slide (level %d); %d of the %d tiles hold at least 5%% tissue\n",
              100.0 * tissue.overall_fraction(), thumbnail_level, with_tissue, o.spec.count);
  if (with_tissue < o.spec.count)
    std::printf("note: fewer tissue tiles than N=%d: the rest are background or white fillers\n", o.spec.count);
  if (o.augment) {
    const data::AugmentConfig config;
    data::Image tile(o.spec.size, o.spec.size, 3);
    for (int i = 0; i < o.spec.count; ++i) {
      std::copy(tiles.tile(i), tiles.tile(i) + tiles.tile_bytes(), tile.pixels.begin());
      data::augment_tile(tile, config, o.seed * 1000003u + uint64_t(i));
      std::copy(tile.pixels.begin(), tile.pixels.end(), tiles.tile(i));
    }
  }
  data::Image mosaic = data::make_mosaic(tiles, o.rows, o.cols);
  if (o.augment) data::augment_mosaic(mosaic, data::AugmentConfig{}, o.seed);
  data::write_png(o.out, mosaic);
  std::printf("mosaic %dx%d -> %s\n", mosaic.width, mosaic.height, o.out.c_str());

  if (!o.tiles_dir.empty()) std::filesystem::create_directories(o.tiles_dir);
  for (int i = 0; i < o.spec.count; ++i) {
    const data::TilePlacement& p = tiles.placements[size_t(i)];
    const double darkness = 1.0 - double(p.pixel_sum) / double(white);
    if (p.grid_row < 0)
      std::printf("  tile %2d: white filler (the grid has fewer than %d cells)\n", i, o.spec.count);
    else
      std::printf("  tile %2d: grid row %d col %d, level-%d x %lld y %lld, darkness %.3f, tissue %.0f%%\n", i,
                  p.grid_row, p.grid_col, o.spec.level, static_cast<long long>(p.x), static_cast<long long>(p.y),
                  darkness, 100.0 * tile_tissue(p));
    if (!o.tiles_dir.empty()) {
      data::Image tile(o.spec.size, o.spec.size, 3);
      std::copy(tiles.tile(i), tiles.tile(i) + tiles.tile_bytes(), tile.pixels.begin());
      char name[64];
      if (p.grid_row < 0)
        std::snprintf(name, sizeof name, "tile_%02d_white.png", i);
      else
        std::snprintf(name, sizeof name, "tile_%02d_r%03d_c%03d.png", i, p.grid_row, p.grid_col);
      data::write_png((std::filesystem::path(o.tiles_dir) / name).string(), tile);
    }
  }
  if (!o.tiles_dir.empty()) std::printf("%d tiles -> %s\n", o.spec.count, o.tiles_dir.c_str());

  if (!o.mask.empty()) {
    SG_CHECK(!o.augment, "tile: --mask with --augment is not supported (the mask would not follow the augmentation)");
    const data::Slide mask_slide(o.mask);
    SG_CHECK(o.spec.level < mask_slide.level_count(), o.mask, ": has ", mask_slide.level_count(),
             " levels; the tiling asks for level ", o.spec.level);
    const data::MaskTiles labels = data::tile_mask(mask_slide.read_level(o.spec.level), tiles);
    const data::Image label_mosaic = data::make_mosaic(labels, o.rows, o.cols);
    std::string mask_out = o.mask_out;
    if (mask_out.empty()) {
      const std::filesystem::path out(o.out);
      mask_out = (out.parent_path() / (out.stem().string() + "_mask.png")).string();
    }
    data::write_png(mask_out, colour_labels(label_mosaic));
    std::printf("mask mosaic (labels as colours: 0 white, 1 green, 2 blue, 3 yellow, 4 orange, 5 red) -> %s\n",
                mask_out.c_str());
  }
  return 0;
}
}  // namespace

void add_tile_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<TileOptions>();
  CLI::App* parser = app.add_subcommand(
      "tile", "Tile a slide (N tiles of S px at level L, most tissue first) and write the mosaic the model sees");
  parser->add_option("--slide", o->slide, "Slide file (anything OpenSlide reads)")->required();
  parser->add_option("--level", o->spec.level, "Pyramid level (0 = full resolution)")->capture_default_str()->check(CLI::NonNegativeNumber);
  parser->add_option("--tiles", o->spec.count, "Number of tiles N")->capture_default_str()->check(CLI::Range(1, data::kMaxTileCount));
  parser->add_option("--size", o->spec.size, "Tile size S in pixels")->capture_default_str()->check(CLI::Range(1, data::kMaxTileSize));
  parser->add_flag("--half-offset", o->spec.half_offset, "Shift the grid by half a tile");
  parser->add_option("--rows", o->rows, "Mosaic rows (0: square)")->capture_default_str()->check(CLI::NonNegativeNumber);
  parser->add_option("--cols", o->cols, "Mosaic columns (0: square)")->capture_default_str()->check(CLI::NonNegativeNumber);
  parser->add_option("--out", o->out, "Mosaic PNG")->capture_default_str();
  parser->add_option("--tiles-dir", o->tiles_dir, "Also write each tile here, named by its grid position");
  parser->add_option("--mask", o->mask, "Label mask of the slide (PANDA *_mask.tiff): cut with the same geometry");
  parser->add_option("--mask-out", o->mask_out, "Mask mosaic PNG (default: <out>_mask.png)");
  parser->add_flag("--augment", o->augment, "Apply the default training augmentation (per tile and per mosaic)");
  parser->add_option("--seed", o->seed, "Augmentation seed")->capture_default_str();
  commands.push_back({parser, [o] { return run_tile(*o); }});
}

}  // namespace sg::cli
