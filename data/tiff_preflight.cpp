#include "data/tiff_preflight.h"

#include <tiffio.h>

#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

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

uint64_t read_uint(std::ifstream& in, uint64_t offset, int bytes, bool big_endian) {
  unsigned char b[8] = {};
  in.seekg(std::streamoff(offset));
  if (!in.read(reinterpret_cast<char*>(b), bytes)) return UINT64_MAX;
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(b[big_endian ? bytes - 1 - i : i]) << (8 * i);
  return v;
}

// Bytes of one value of a TIFF field type (TIFF 6.0 and BigTIFF); 0 for a type we do not know.
uint64_t type_size(uint64_t type) {
  switch (type) {
    case 1: case 2: case 6: case 7: return 1;  // BYTE, ASCII, SBYTE, UNDEFINED
    case 3: case 8: return 2;                  // SHORT, SSHORT
    case 4: case 9: case 11: case 13: return 4;  // LONG, SLONG, FLOAT, IFD
    case 5: case 10: case 12: case 16: case 17: case 18: return 8;  // RATIONALs, DOUBLE, LONG8, SLONG8, IFD8
    default: return 0;
  }
}

// OpenSlide reads every directory entry itself (its "tifflike" reader computes the quickhash and
// the properties) and allocates count x size bytes for a value before checking them against the
// file: walk the directories the same way and refuse a value that cannot be in the file.
void check_directory_entries(const std::string& path, uint64_t file_size) {
  std::ifstream in(path, std::ios::binary);
  char order[2] = {};
  if (!in.read(order, 2)) return;
  const bool big_endian = order[0] == 'M';
  const uint64_t magic = read_uint(in, 2, 2, big_endian);
  const bool big_tiff = magic == 43;
  // Hamamatsu NDPI files are classic TIFFs past 4 GiB whose offsets wrap around at 2^32 (OpenSlide
  // knows the trick); their entries cannot be checked this way.
  if (!big_tiff && file_size > UINT32_MAX) return;
  const int offset_bytes = big_tiff ? 8 : 4;
  const uint64_t entry_bytes = big_tiff ? 20 : 12;
  uint64_t ifd = read_uint(in, big_tiff ? 8 : 4, offset_bytes, big_endian);
  std::set<uint64_t> seen;
  for (int directory = 0; ifd != 0 && ifd != UINT64_MAX && directory < 65536; ++directory) {
    SG_CHECK(ifd < file_size && seen.insert(ifd).second, path, ": TIFF directory ", directory, " at byte ", ifd,
             ifd < file_size ? " was already read (the directories form a loop)" : " lies past the end of the file",
             ": the file is damaged or not a slide");
    const uint64_t entries = read_uint(in, ifd, big_tiff ? 8 : 2, big_endian);
    const uint64_t first = ifd + (big_tiff ? 8 : 2);
    SG_CHECK(entries != UINT64_MAX && entries <= (file_size - std::min(first, file_size)) / entry_bytes, path,
             ": TIFF directory ", directory, " claims ", entries, " entries, more than the file holds: the file is damaged");
    for (uint64_t e = 0; e < entries; ++e) {
      const uint64_t at = first + e * entry_bytes;
      const uint64_t tag = read_uint(in, at, 2, big_endian);
      const uint64_t size = type_size(read_uint(in, at + 2, 2, big_endian));
      const uint64_t count = read_uint(in, at + 4, offset_bytes, big_endian);
      if (size == 0 || count == UINT64_MAX) continue;
      SG_CHECK(count <= file_size / size, path, ": TIFF directory ", directory, ", tag ", tag, " declares ", count,
               " values of ", size, " bytes, more than the ", file_size, "-byte file holds: the file is damaged");
      const uint64_t bytes = count * size;
      if (bytes <= uint64_t(offset_bytes)) continue;  // stored in the entry itself
      const uint64_t offset = read_uint(in, at + 4 + offset_bytes, offset_bytes, big_endian);
      SG_CHECK(offset != UINT64_MAX && offset <= file_size - bytes, path, ": TIFF directory ", directory, ", tag ", tag,
               " puts ", bytes, " bytes at byte ", offset, ", past the end of the ", file_size,
               "-byte file: the file is damaged or truncated");
    }
    ifd = read_uint(in, first + entries * entry_bytes, offset_bytes, big_endian);
  }
}

}  // namespace

void check_tiff_tiles(const std::string& path) {
  if (!starts_like_a_tiff(path)) return;
  std::error_code size_error;
  const uint64_t file_size = std::filesystem::file_size(path, size_error);
  if (size_error) return;
  check_directory_entries(path, file_size);
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
