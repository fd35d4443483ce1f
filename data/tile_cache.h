#pragma once
// TileCache: each slide's selected tiles on disk, so that later epochs skip OpenSlide.
//
// One file per slide, <dir>/<image_id>.tiles, little-endian:
//   magic "SGTILES\0" | u32 format version | TileSpec (i32 count, size, level, half_offset)
//   | u32 key length, key bytes | u32 tile count, per tile: i32 grid_row, i32 grid_col, i64 x,
//   i64 y, u32 pixel_sum | u64 pixel bytes, pixels [N, S, S, 3] | u64 checksum64 of all the above.
// The key is the caller's fingerprint of the source (tile_cache_key: the slide's path, size and
// modification time), so a changed slide or changed tiling parameters read as a miss; a file that
// fails its checksum or cannot be parsed is counted as corrupt (also a miss) and is replaced by
// the next store. Stores write atomically (core/atomic_file.h: a uniquely named temporary file in
// the same directory, fsync'ed and renamed over the old one), so readers, concurrent writers, a
// kill or a power cut never leave a torn file.
// Thread-safe: any number of threads may load and store, for the same or different ids.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "data/tile_set.h"

namespace sg::data {

// The files' checksum: FNV-1a's step (xor, multiply by the FNV prime) on 64-bit words in four
// independent lanes (fast: about a cycle per word), the tail byte by byte, the lanes and the
// length finished with splitmix64. Each step is a bijection, so any single changed word changes it.
uint64_t checksum64(std::span<const uint8_t> bytes);

// "<absolute path>|<size in bytes>|<mtime in ns>": changes when the file is replaced or edited.
// Throws sg::Error naming the file when it cannot be examined.
std::string tile_cache_key(const std::filesystem::path& source);

struct TileCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;   // no file, or a file for other parameters / another key / another version
  int64_t corrupt = 0;  // a file that failed its checksum or did not parse (also not a hit)
  int64_t stores = 0;
};

class TileCache {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  // The directory must exist when storing (it is not created here).
  explicit TileCache(std::filesystem::path directory);

  // The cached tiles of `image_id` when the file exists, is intact and was made for `spec` and
  // `key`; nullopt otherwise. Never throws for a bad file (it counts as corrupt).
  std::optional<TileSet> load(const std::string& image_id, const TileSpec& spec, const std::string& key);
  // Writes the tiles atomically. Throws sg::Error naming the file on any failure (a missing or
  // read-only directory, a full disk); a previous file is then left as it was.
  void store(const std::string& image_id, const std::string& key, const TileSet& tiles);

  std::filesystem::path path_for(const std::string& image_id) const;
  const std::filesystem::path& directory() const { return directory_; }
  TileCacheStats stats() const;

 private:
  std::filesystem::path directory_;
  std::atomic<int64_t> hits_{0}, misses_{0}, corrupt_{0}, stores_{0};
};

}  // namespace sg::data
