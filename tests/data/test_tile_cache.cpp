// TileCache: round trips, invalidation by tiling parameters and by the slide's key, corrupt and
// truncated files counted as corrupt and replaced, concurrent stores, and clear errors for a
// missing or read-only directory and a full disk.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "data/tile_cache.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"

namespace sg::data {
namespace {

TileSet random_tiles(testing::Rng& rng, TileSpec spec) {
  TileSet t;
  t.spec = spec;
  for (int i = 0; i < spec.count; ++i) {
    TilePlacement p;
    p.grid_row = static_cast<int>(rng.integer(-1, 40));
    p.grid_col = static_cast<int>(rng.integer(-1, 40));
    p.x = rng.integer(-1000, 1'000'000'000'000);
    p.y = rng.integer(-1000, 100000);
    p.pixel_sum = static_cast<uint32_t>(rng.integer(0, UINT32_MAX));
    t.placements.push_back(p);
  }
  t.pixels.resize(t.tile_bytes() * static_cast<size_t>(spec.count));
  for (uint8_t& b : t.pixels) b = static_cast<uint8_t>(rng.integer(0, 255));
  return t;
}

void expect_same(const TileSet& a, const TileSet& b) {
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.placements, b.placements);
  EXPECT_TRUE(a.pixels == b.pixels);
}

std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

const TileSpec kSpec{6, 8, 1, false};

TEST(TileCache, RoundTrip) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  EXPECT_FALSE(cache.load("slide_a", kSpec, "key").has_value()) << "nothing stored yet";
  EXPECT_EQ(cache.stats().misses, 1);
  const TileSet tiles = random_tiles(rng, kSpec);
  cache.store("slide_a", "key", tiles);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "slide_a.tiles"));
  const std::optional<TileSet> back = cache.load("slide_a", kSpec, "key");
  ASSERT_TRUE(back.has_value());
  expect_same(*back, tiles);
  // Storing again replaces the file; a half-offset spec with zero tiles also round-trips.
  const TileSet other = random_tiles(rng, kSpec);
  cache.store("slide_a", "key", other);
  expect_same(cache.load("slide_a", kSpec, "key").value(), other);
  const TileSpec empty_spec{0, 16, 2, true};
  cache.store("empty", "", random_tiles(rng, empty_spec));
  expect_same(cache.load("empty", empty_spec, "").value(), random_tiles(rng, empty_spec));
  const TileCacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 3);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.corrupt, 0);
  EXPECT_EQ(s.stores, 3);
  // No temporary files are left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().extension(), ".tiles") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST(TileCache, OtherTilingParametersOrKeyMiss) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  cache.store("s", "slide.tiff|100|5", random_tiles(rng, kSpec));
  for (TileSpec changed : {TileSpec{7, 8, 1, false}, TileSpec{6, 16, 1, false}, TileSpec{6, 8, 2, false},
                           TileSpec{6, 8, 1, true}}) {
    EXPECT_FALSE(cache.load("s", changed, "slide.tiff|100|5").has_value())
        << changed.count << " " << changed.size << " " << changed.level << " " << changed.half_offset;
  }
  EXPECT_FALSE(cache.load("s", kSpec, "slide.tiff|101|5").has_value());
  EXPECT_FALSE(cache.load("s", kSpec, "slide.tiff|100|").has_value());
  EXPECT_FALSE(cache.load("s", kSpec, "").has_value());
  EXPECT_TRUE(cache.load("s", kSpec, "slide.tiff|100|5").has_value());
  EXPECT_EQ(cache.stats().misses, 7);
  EXPECT_EQ(cache.stats().corrupt, 0) << "a stale file is a miss, not a corrupt one";
}

TEST(TileCache, KeyFollowsTheSlideFile) {
  testing::TempDir dir;
  const std::filesystem::path slide = dir.path() / "slide.tiff";
  write_bytes(slide, {1, 2, 3});
  const std::string key = tile_cache_key(slide);
  EXPECT_EQ(tile_cache_key(slide), key);
  EXPECT_NE(key.find(slide.string()), std::string::npos) << key;
  write_bytes(slide, {1, 2, 3, 4});
  EXPECT_NE(tile_cache_key(slide), key) << "size changed";
  const std::string key4 = tile_cache_key(slide);
  std::filesystem::last_write_time(slide, std::filesystem::last_write_time(slide) - std::chrono::hours(1));
  EXPECT_NE(tile_cache_key(slide), key4) << "modification time changed";
  try {
    tile_cache_key(dir.path() / "missing.tiff");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.tiff"), std::string::npos) << e.what();
  }
}

TEST(TileCache, FlippedByteIsCorruptAndReplacedByTheNextStore) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  const TileSet tiles = random_tiles(rng, kSpec);
  cache.store("s", "key", tiles);
  const std::filesystem::path path = cache.path_for("s");
  const std::vector<uint8_t> good = read_bytes(path);
  // Offsets in the magic, the spec, the key, the placements, the pixels and the checksum.
  std::vector<size_t> offsets = {0, 7, 13, 30, 40, 60, good.size() / 2, good.size() - 9, good.size() - 1};
  for (int i = 0; i < 6; ++i) offsets.push_back(static_cast<size_t>(rng.integer(12, static_cast<int64_t>(good.size()) - 1)));
  int64_t corrupt = 0;
  for (size_t offset : offsets) {
    std::vector<uint8_t> bad = good;
    bad[offset] ^= static_cast<uint8_t>(1u << rng.integer(0, 7));
    write_bytes(path, bad);
    EXPECT_FALSE(cache.load("s", kSpec, "key").has_value()) << "byte " << offset;
    EXPECT_EQ(cache.stats().corrupt, ++corrupt) << "byte " << offset;
  }
  EXPECT_EQ(cache.stats().hits, 0);
  cache.store("s", "key", tiles);  // the next store replaces the corrupt file
  expect_same(cache.load("s", kSpec, "key").value(), tiles);
}

TEST(TileCache, TruncatedFileIsCorrupt) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  cache.store("s", "key", random_tiles(rng, kSpec));
  const std::vector<uint8_t> good = read_bytes(cache.path_for("s"));
  int64_t corrupt = 0;
  for (size_t length : {size_t{0}, size_t{5}, size_t{12}, size_t{40}, good.size() / 2, good.size() - 8, good.size() - 1}) {
    write_bytes(cache.path_for("s"), std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(length)));
    EXPECT_FALSE(cache.load("s", kSpec, "key").has_value()) << length;
    EXPECT_EQ(cache.stats().corrupt, ++corrupt) << "truncated to " << length << " bytes";
  }
  // Extra bytes at the end are corrupt too.
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  write_bytes(cache.path_for("s"), longer);
  EXPECT_FALSE(cache.load("s", kSpec, "key").has_value());
  EXPECT_EQ(cache.stats().corrupt, ++corrupt);
}

TEST(TileCache, OtherFormatVersionIsAMiss) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  cache.store("s", "key", random_tiles(rng, kSpec));
  std::vector<uint8_t> bytes = read_bytes(cache.path_for("s"));
  ASSERT_EQ(bytes[8], TileCache::kFormatVersion);  // the u32 after the 8-byte magic
  bytes[8] = TileCache::kFormatVersion + 1;
  write_bytes(cache.path_for("s"), bytes);
  EXPECT_FALSE(cache.load("s", kSpec, "key").has_value());
  EXPECT_EQ(cache.stats().misses, 1);
  EXPECT_EQ(cache.stats().corrupt, 0);
}

TEST(TileCache, ConcurrentStores) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  const TileSpec spec{4, 32, 1, false};
  constexpr int kThreads = 6, kIdsPerThread = 5;
  std::vector<TileSet> sets;
  for (int i = 0; i < kThreads * kIdsPerThread; ++i) sets.push_back(random_tiles(rng, spec));
  std::vector<TileSet> contenders;  // all written to the same id at once
  for (int i = 0; i < kThreads; ++i) contenders.push_back(random_tiles(rng, spec));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kIdsPerThread; ++i) {
          const int id = t * kIdsPerThread + i;
          cache.store("slide_" + std::to_string(id), "k", sets[static_cast<size_t>(id)]);
        }
        cache.store("shared", "k", contenders[static_cast<size_t>(t)]);
        (void)cache.load("shared", spec, "k");
      }
    });
  for (std::thread& t : threads) t.join();
  for (int id = 0; id < kThreads * kIdsPerThread; ++id)
    expect_same(cache.load("slide_" + std::to_string(id), spec, "k").value(), sets[static_cast<size_t>(id)]);
  const std::optional<TileSet> shared = cache.load("shared", spec, "k");
  ASSERT_TRUE(shared.has_value()) << "concurrent stores of one id leave one whole file";
  bool matches_one = false;
  for (const TileSet& c : contenders) matches_one = matches_one || c.pixels == shared->pixels;
  EXPECT_TRUE(matches_one);
  EXPECT_EQ(cache.stats().corrupt, 0) << "no reader saw a torn file";
  EXPECT_EQ(cache.stats().stores, kThreads * (kIdsPerThread + 1) * 3);
}

TEST(TileCache, StoreIntoMissingDirectoryNamesTheFile) {
  testing::Rng rng;
  testing::TempDir dir;
  TileCache cache(dir.path() / "no_such_dir");
  try {
    cache.store("s", "key", random_tiles(rng, kSpec));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find((dir.path() / "no_such_dir" / "s.tiles").string()), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
}

TEST(TileCache, StoreIntoReadOnlyDirectoryKeepsThePreviousFile) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "running as root: root ignores directory permissions, so a read-only directory cannot make "
                    "the store fail";
  testing::Rng rng;
  testing::TempDir dir;
  TileCache cache(dir.path());
  const TileSet first = random_tiles(rng, kSpec);
  cache.store("s", "key", first);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  std::string message;
  try {
    cache.store("s", "key", random_tiles(rng, kSpec));
  } catch (const Error& e) {
    message = e.what();
  }
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all);
  EXPECT_NE(message.find(cache.path_for("s").string()), std::string::npos) << message;
  EXPECT_NE(message.find("Permission denied"), std::string::npos) << message;
  expect_same(cache.load("s", kSpec, "key").value(), first);
}

TEST(TileCache, FullDiskGivesAnErrorAndKeepsThePreviousFile) {
  // A file size limit makes write() fail with EFBIG the way a full disk fails with ENOSPC.
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  TileCache cache(dir.path());
  const TileSet first = random_tiles(rng, kSpec);
  cache.store("s", "key", first);
  const TileSet big = random_tiles(rng, TileSpec{8, 64, 1, false});  // ~98 KB
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::string message;
  try {
    cache.store("s", "key", big);
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find(cache.path_for("s").string()), std::string::npos) << message;
  EXPECT_NE(message.find(": writing "), std::string::npos) << message;
  expect_same(cache.load("s", kSpec, "key").value(), first);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1) << "the temporary file was removed";
}

TEST(TileCache, RejectsBadIdsAndInconsistentTileSets) {
  testing::Rng rng;
  testing::TempDir dir;
  TileCache cache(dir.path());
  for (const std::string id : {"", ".", "..", "a/b", "../x"}) {
    EXPECT_THROW(cache.store(id, "k", random_tiles(rng, kSpec)), Error) << id;
    EXPECT_THROW((void)cache.load(id, kSpec, "k"), Error) << id;
  }
  TileSet bad = random_tiles(rng, kSpec);
  bad.pixels.pop_back();
  try {
    cache.store("s", "k", bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inconsistent"), std::string::npos) << e.what();
  }
}

TEST(TileCache, ChecksumSeesEveryBit) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (size_t n : {size_t{1}, size_t{31}, size_t{32}, size_t{100}}) {
    std::vector<uint8_t> bytes(n);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng.integer(0, 255));
    const uint64_t h = checksum64(bytes);
    for (size_t i = 0; i < n; ++i)
      for (int bit = 0; bit < 8; ++bit) {
        bytes[i] ^= static_cast<uint8_t>(1u << bit);
        EXPECT_NE(checksum64(bytes), h) << n << " bytes, byte " << i << " bit " << bit;
        bytes[i] ^= static_cast<uint8_t>(1u << bit);
      }
    std::vector<uint8_t> longer = bytes;
    longer.push_back(0);
    EXPECT_NE(checksum64(longer), h) << "a zero byte appended";
  }
}

}  // namespace
}  // namespace sg::data
