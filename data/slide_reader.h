#pragma once
// Whole-slide images through OpenSlide 3.4.1 (see docs/panda_and_openslide.md, section 3).
// A Slide owns one openslide_t handle. Every member but the destructor is safe to call from
// several threads at once (OpenSlide guarantees it for one handle), so worker threads share a
// handle through SlideCache instead of each opening the file.
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/image.h"

typedef struct _openslide openslide_t;  // <openslide/openslide.h>, kept out of this header

namespace sg::data {

struct LevelSize {
  int64_t width = 0;
  int64_t height = 0;
  bool operator==(const LevelSize&) const = default;
};

struct MicronsPerPixel {
  double x = 0;
  double y = 0;
};

class Slide {
 public:
  // Throws sg::Error naming the path: "no such file", "not a slide OpenSlide can read" (OpenSlide
  // returned NULL), or OpenSlide's own error text (a handle born in the error state).
  explicit Slide(std::string path);
  ~Slide();
  Slide(const Slide&) = delete;
  Slide& operator=(const Slide&) = delete;

  const std::string& path() const { return path_; }
  int level_count() const { return static_cast<int>(levels_.size()); }
  LevelSize level_dimensions(int level) const;
  // OpenSlide's downsample: the mean of the width and height ratios to level 0 (PANDA: 1, 4, 16).
  double level_downsample(int level) const;

  std::optional<std::string> property(const std::string& name) const;
  std::map<std::string, std::string> properties() const;
  std::string vendor() const;  // openslide.vendor, e.g. "generic-tiff"; "" when absent
  // openslide.mpp-x / mpp-y; OpenSlide 3.4.1's generic-tiff driver does not set them, so this
  // falls back to the TIFF resolution tags it exposes (tiff.XResolution / YResolution with
  // tiff.ResolutionUnit centimeter or inch). Empty when neither is there.
  std::optional<MicronsPerPixel> microns_per_pixel() const;

  // RGB [h, w, 3] of `level`, top-left at (x0, y0) in level-0 pixels as OpenSlide takes it; w, h
  // in level pixels. Premultiplied alpha is undone; pixels OpenSlide leaves transparent (outside
  // the image, or no tile) come back white (255). Throws with the path on any OpenSlide error.
  Image read_region(int64_t x0, int64_t y0, int level, int w, int h) const;
  // The whole level as RGB [h, w, 3], read in strips of whole rows, at most `strip_pixels`
  // pixels each (default 4 Mi: 16 MiB of ARGB), so the ARGB buffer stays small.
  Image read_level(int level, int64_t strip_pixels = int64_t(4) << 20) const;

  // OpenSlide's sticky error, "" while the handle is healthy. Once set, every read throws.
  std::string error() const;

 private:
  void check_level(int level, const char* what) const;
  void throw_if_failed(const std::string& what) const;

  std::string path_;
  openslide_t* handle_ = nullptr;
  std::vector<LevelSize> levels_;
  std::vector<double> downsamples_;
};

// Slides shared by path, at most `capacity` kept open (least recently used dropped first). A
// dropped slide stays alive while anyone still holds it. Failed opens are not cached: the error
// is thrown to the caller and the next get() tries again; a cached handle that has hit an
// OpenSlide error is reopened on the next get(). Safe to use from several threads.
class SlideCache {
 public:
  explicit SlideCache(size_t capacity = 16);
  std::shared_ptr<Slide> get(const std::string& path);
  size_t size() const;
  size_t capacity() const { return capacity_; }
  void clear();

 private:
  struct Entry {
    std::shared_ptr<Slide> slide;
    std::list<std::string>::iterator recency;  // position in recency_, front = newest
  };
  size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::string> recency_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace sg::data
