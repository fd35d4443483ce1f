#include "data/tile_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sg::data {

static_assert(std::endian::native == std::endian::little, "the tile cache format is little-endian");

namespace {

constexpr char kMagic[8] = {'S', 'G', 'T', 'I', 'L', 'E', 'S', '\0'};
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A POSIX file descriptor (the reader's), closed on destruction.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Appends little-endian fields to a byte vector.
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void put_bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }

 private:
  std::vector<uint8_t>& out_;
};

// Reads fields with bounds checks; a read past the end sets `failed` and yields zeros.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <class T>
  T get() {
    T value{};
    if (!take(sizeof(T))) return value;
    std::memcpy(&value, data_ + pos_ - sizeof(T), sizeof(T));
    return value;
  }
  const uint8_t* get_bytes(size_t n) { return take(n) ? data_ + pos_ - n : nullptr; }
  bool failed() const { return failed_; }
  size_t position() const { return pos_; }

 private:
  bool take(size_t n) {
    if (failed_ || n > size_ - pos_) {
      failed_ = true;
      return false;
    }
    pos_ += n;
    return true;
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool failed_ = false;
};

void check_image_id(const std::string& id) {
  SG_CHECK(!id.empty() && id != "." && id != ".." && id.find('/') == std::string::npos &&
               id.find('\\') == std::string::npos && id.find('\0') == std::string::npos,
           "TileCache: image id \"", id, "\" cannot be a file name (empty, \".\", \"..\", or has a path separator)");
}

}  // namespace

uint64_t checksum64(std::span<const uint8_t> bytes) {
  uint64_t lane[4] = {kFnvOffset, kFnvOffset ^ 1, kFnvOffset ^ 2, kFnvOffset ^ 3};
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  for (; n >= 32; n -= 32, p += 32) {
    uint64_t w[4];
    std::memcpy(w, p, 32);
    for (int i = 0; i < 4; ++i) lane[i] = (lane[i] ^ w[i]) * kFnvPrime;
  }
  for (; n > 0; --n, ++p) lane[0] = (lane[0] ^ *p) * kFnvPrime;
  uint64_t h = mix64(bytes.size());
  for (uint64_t l : lane) h = mix64(h ^ l);
  return h;
}

std::string tile_cache_key(const std::filesystem::path& source) {
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(source, error);
  SG_CHECK(!error, "tile_cache_key: cannot resolve ", source, ": ", error.message());
  const uintmax_t size = std::filesystem::file_size(absolute, error);
  SG_CHECK(!error, "tile_cache_key: cannot read the size of ", absolute, ": ", error.message());
  const auto mtime = std::filesystem::last_write_time(absolute, error);
  SG_CHECK(!error, "tile_cache_key: cannot read the modification time of ", absolute, ": ", error.message());
  return detail::concat(absolute.string(), "|", size, "|",
                        std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count());
}

TileCache::TileCache(std::filesystem::path directory) : directory_(std::move(directory)) {}

std::filesystem::path TileCache::path_for(const std::string& image_id) const {
  check_image_id(image_id);
  return directory_ / (image_id + ".tiles");
}

TileCacheStats TileCache::stats() const {
  return TileCacheStats{hits_.load(), misses_.load(), corrupt_.load(), stores_.load()};
}

std::optional<TileSet> TileCache::load(const std::string& image_id, const TileSpec& spec, const std::string& key) {
  const std::filesystem::path path = path_for(image_id);
  const auto miss = [&]() -> std::optional<TileSet> {
    ++misses_;
    return std::nullopt;
  };
  const auto corrupt = [&]() -> std::optional<TileSet> {
    ++corrupt_;
    return std::nullopt;
  };

  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno == ENOENT ? miss() : corrupt();  // unreadable: replace it on the next store
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || info.st_size < 0) return corrupt();
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t have = 0;
  while (have < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return corrupt();  // an error, or the file shrank while we read it
    have += static_cast<size_t>(n);
  }

  Reader header(bytes.data(), bytes.size());
  const uint8_t* magic = header.get_bytes(sizeof(kMagic));
  if (!magic || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) return corrupt();
  const auto version = header.get<uint32_t>();
  if (header.failed()) return corrupt();
  if (version != kFormatVersion) return miss();  // written by another version: rewrite it
  if (bytes.size() < header.position() + sizeof(uint64_t)) return corrupt();
  const size_t payload = bytes.size() - sizeof(uint64_t);
  uint64_t stored_checksum = 0;
  std::memcpy(&stored_checksum, bytes.data() + payload, sizeof(uint64_t));
  if (checksum64({bytes.data(), payload}) != stored_checksum) return corrupt();

  Reader r(bytes.data(), payload);
  r.get_bytes(sizeof(kMagic) + sizeof(uint32_t));
  TileSet tiles;
  tiles.spec.count = r.get<int32_t>();
  tiles.spec.size = r.get<int32_t>();
  tiles.spec.level = r.get<int32_t>();
  tiles.spec.half_offset = r.get<int32_t>() != 0;
  const auto key_length = r.get<uint32_t>();
  const uint8_t* key_bytes = r.get_bytes(key_length);
  const auto count = r.get<uint32_t>();
  if (r.failed() || tiles.spec.count < 0 || tiles.spec.size < 0 || count != static_cast<uint32_t>(tiles.spec.count))
    return corrupt();
  tiles.placements.resize(count);
  for (TilePlacement& t : tiles.placements) {
    t.grid_row = r.get<int32_t>();
    t.grid_col = r.get<int32_t>();
    t.x = r.get<int64_t>();
    t.y = r.get<int64_t>();
    t.pixel_sum = r.get<uint32_t>();
  }
  const auto pixel_bytes = r.get<uint64_t>();
  if (r.failed() || pixel_bytes != tiles.tile_bytes() * count || pixel_bytes != payload - r.position())
    return corrupt();
  const uint8_t* pixels = r.get_bytes(pixel_bytes);
  if (!pixels) return corrupt();

  if (tiles.spec != spec) return miss();  // tiled with other parameters
  if (key_length != key.size() || std::memcmp(key_bytes, key.data(), key_length) != 0) return miss();  // the slide changed
  tiles.pixels.assign(pixels, pixels + pixel_bytes);
  ++hits_;
  return tiles;
}

void TileCache::store(const std::string& image_id, const std::string& key, const TileSet& tiles) {
  const std::filesystem::path path = path_for(image_id);
  SG_CHECK(tiles.spec.count >= 0 && tiles.placements.size() == static_cast<size_t>(tiles.spec.count) &&
               tiles.pixels.size() == tiles.tile_bytes() * tiles.placements.size(),
           "TileCache::store ", path, ": inconsistent tile set (spec says ", tiles.spec.count, " tiles of ",
           tiles.spec.size, " px, got ", tiles.placements.size(), " placements and ", tiles.pixels.size(),
           " pixel bytes)");
  SG_CHECK(key.size() <= UINT32_MAX, "TileCache::store ", path, ": key of ", key.size(), " bytes is too long");

  std::vector<uint8_t> bytes;
  bytes.reserve(64 + key.size() + tiles.placements.size() * 28 + tiles.pixels.size() + 8);
  Writer w(bytes);
  w.put_bytes(kMagic, sizeof(kMagic));
  w.put<uint32_t>(kFormatVersion);
  w.put<int32_t>(tiles.spec.count);
  w.put<int32_t>(tiles.spec.size);
  w.put<int32_t>(tiles.spec.level);
  w.put<int32_t>(tiles.spec.half_offset ? 1 : 0);
  w.put<uint32_t>(static_cast<uint32_t>(key.size()));
  w.put_bytes(key.data(), key.size());
  w.put<uint32_t>(static_cast<uint32_t>(tiles.placements.size()));
  for (const TilePlacement& t : tiles.placements) {
    w.put<int32_t>(t.grid_row);
    w.put<int32_t>(t.grid_col);
    w.put<int64_t>(t.x);
    w.put<int64_t>(t.y);
    w.put<uint32_t>(t.pixel_sum);
  }
  w.put<uint64_t>(tiles.pixels.size());
  w.put_bytes(tiles.pixels.data(), tiles.pixels.size());
  w.put<uint64_t>(checksum64(bytes));

  // Concurrent stores of one id each write their own temporary; the last rename wins.
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
  ++stores_;
}

}  // namespace sg::data
