#include "data/tiff_preflight.h"

#include <tiffio.h>

#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"

namespace sg::data {
namespace {

int ignore_tiff_message(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* tiff) const { TIFFClose(tiff); }
};
struct TiffOptionsFree {
  void operator()(TIFFOpenOptions* options) const { TIFFOpenOptionsFree(options); }
};

bool starts_like_a_tiff(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof magic)) return false;
  return std::memcmp(magic, "II*\0", 4) == 0 || std::memcmp(magic, "MM\0*", 4) == 0 ||  // classic TIFF
         std::memcmp(magic, "II+\0", 4) == 0 || std::memcmp(magic, "MM\0+", 4) == 0;    // BigTIFF
}

}  // namespace

void check_tiff_tiles(const std::string& path) {
  if (!starts_like_a_tiff(path)) return;
  std::error_code size_error;
  const uint64_t file_size = std::filesystem::file_size(path, size_error);
  if (size_error) return;
  std::unique_ptr<TIFFOpenOptions, TiffOptionsFree> options(TIFFOpenOptionsAlloc());
  SG_CHECK(options != nullptr, path, ": libtiff cannot allocate its open options");
  // Quiet: OpenSlide reports what is wrong with a file libtiff cannot read.
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), ignore_tiff_message, nullptr);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), ignore_tiff_message, nullptr);
  std::unique_ptr<TIFF, TiffCloser> tiff(TIFFOpenExt(path.c_str(), "r", options.get()));
  if (tiff == nullptr) return;
  // A loop of directories (an IFD pointing back) ends libtiff's walk with an error, not a hang.
  int directory = 0;
  do {
    if (TIFFIsTiled(tiff.get())) {
      uint32_t tile_width = 0, tile_height = 0;
      TIFFGetField(tiff.get(), TIFFTAG_TILEWIDTH, &tile_width);
      TIFFGetField(tiff.get(), TIFFTAG_TILELENGTH, &tile_height);
      const long long pixels = static_cast<long long>(tile_width) * tile_height;
      SG_CHECK(pixels > 0 && pixels <= kMaxTilePixels, path, ": TIFF directory ", directory, " declares tiles of ",
               tile_width, " x ", tile_height, " pixels (at most ", kMaxTilePixels,
               " are read): the file is damaged or not a slide");
      // OpenSlide reads a JPEG tile's bytes into a buffer of the size the file declares.
      uint64_t* offsets = nullptr;
      uint64_t* byte_counts = nullptr;
      const uint32_t tiles = TIFFNumberOfTiles(tiff.get());
      if (TIFFGetField(tiff.get(), TIFFTAG_TILEOFFSETS, &offsets) == 1 &&
          TIFFGetField(tiff.get(), TIFFTAG_TILEBYTECOUNTS, &byte_counts) == 1 && offsets != nullptr &&
          byte_counts != nullptr) {
        for (uint32_t tile = 0; tile < tiles; ++tile)
          SG_CHECK(byte_counts[tile] <= file_size && offsets[tile] <= file_size - byte_counts[tile], path,
                   ": TIFF directory ", directory, " puts tile ", tile, " at bytes ", offsets[tile], "..+",
                   byte_counts[tile], ", past the end of the ", file_size, "-byte file: the file is damaged or truncated");
      }
    }
    ++directory;
  } while (TIFFReadDirectory(tiff.get()) == 1);
}

}  // namespace sg::data
