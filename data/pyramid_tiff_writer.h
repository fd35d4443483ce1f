#pragma once
// Writes a PANDA-like pyramidal TIFF with libtiff: level 0 as the first tiled directory, then each
// reduced level (downsample 4, 16 by default) as a further tiled directory with
// SubFileType = reduced image, which is what OpenSlide's generic-tiff driver needs to see levels
// (docs/panda_and_openslide.md, section 3).
//
// Level 0 is streamed: the caller renders one band of `tile_size` rows at a time, each band is cut
// into tiles and written at once, and the reduced levels are made from the band (OpenCV resize)
// and kept, so a 20,000 x 10,000 slide holds one 256-row band plus its /4 and /16 levels
// (1/16 + 1/256 of level 0) in memory, never level 0 itself.
//
// The file is written atomically (core/atomic_file.h: libtiff writes a temporary file beside PATH,
// which is fsync'ed and renamed when complete), so a failure, a killed run or a power cut never
// leaves a torn PATH.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace sg::data {

struct PyramidTiffOptions {
  enum class Compression { jpeg, deflate };
  enum class Downscale { area, nearest };  // area: box average (images); nearest: labels (masks)

  Compression compression = Compression::jpeg;
  int jpeg_quality = 90;   // 1..100
  bool jpeg_ycbcr = true;  // JPEG as YCbCr 4:2:0 (as scanners write it) or plain RGB
  Downscale downscale = Downscale::area;
  int tile_size = 256;                     // a multiple of 16 (TIFF), divisible by every downsample;
                                           // a level smaller than a tile gets smaller tiles
  std::vector<int> downsamples{1, 4, 16};  // level i is floor(size / downsamples[i]); first is 1
  double microns_per_pixel = 0.5;          // level 0; written as X/YResolution per cm (0: not written)
  uint8_t fill = 255;                      // the part of an edge tile past the image
  std::string description;                 // ImageDescription of level 0 ("" = none)
};

// Fills `band` ([band.height, width, channels], allocated by the writer) with level-0 rows
// y0 .. y0 + band.height - 1. Bands come in order, top to bottom, band.height = tile_size except
// for the last.
using BandRenderer = std::function<void(int y0, Image& band)>;

// Throws sg::Error naming the path and libtiff's own message on any failure.
void write_pyramid_tiff(const std::string& path, int width, int height, int channels, const BandRenderer& render,
                        const PyramidTiffOptions& options = {});

// The size of a reduced level as this writer makes it: floor(size / downsample). The writer
// requires every level to be at least 16 x 16 (one TIFF tile).
inline int reduced_size(int size, int downsample) { return size / downsample; }

}  // namespace sg::data
