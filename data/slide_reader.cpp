#include "data/slide_reader.h"

#include <openslide/openslide.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "data/tiff_preflight.h"

namespace sg::data {

namespace {

// Why OpenSlide returned NULL: missing, unreadable, or a file it does not recognise.
std::string describe_unopenable(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return path + ": no such file";
  if (std::filesystem::is_directory(status)) return path + ": is a directory, not a slide";
  const auto bytes = std::filesystem::file_size(path, ec);
  // A TIFF header that OpenSlide still rejects is most often a file cut short (an interrupted copy).
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  const bool tiff = (magic[0] == 'I' && magic[1] == 'I' && (magic[2] == 42 || magic[2] == 43) && magic[3] == 0) ||
                    (magic[0] == 'M' && magic[1] == 'M' && magic[2] == 0 && (magic[3] == 42 || magic[3] == 43));
  return detail::concat("not a slide OpenSlide can read: ", path, " (the file exists, ", ec ? 0 : bytes, " bytes; ",
                        tiff ? "it starts like a TIFF, so it is probably truncated or damaged)"
                             : "OpenSlide recognises no format in it)");
}

// 0xAARRGGBB premultiplied -> RGB; alpha 0 (outside the image) -> white.
void argb_to_rgb(const uint32_t* argb, size_t count, uint8_t* rgb) {
  for (size_t i = 0; i < count; ++i, rgb += 3) {
    const uint32_t p = argb[i];
    const uint32_t a = p >> 24;
    uint32_t r = (p >> 16) & 0xff, g = (p >> 8) & 0xff, b = p & 0xff;
    if (a == 0) {
      r = g = b = 255;
    } else if (a < 255) {
      r = std::min<uint32_t>(255, (r * 255 + a / 2) / a);
      g = std::min<uint32_t>(255, (g * 255 + a / 2) / a);
      b = std::min<uint32_t>(255, (b * 255 + a / 2) / a);
    }
    rgb[0] = static_cast<uint8_t>(r);
    rgb[1] = static_cast<uint8_t>(g);
    rgb[2] = static_cast<uint8_t>(b);
  }
}

}  // namespace

Slide::Slide(std::string path) : path_(std::move(path)) {
  check_tiff_tiles(path_);  // before OpenSlide allocates what the file declares (data/tiff_preflight.h)
  handle_ = openslide_open(path_.c_str());
  if (handle_ == nullptr) throw Error(describe_unopenable(path_));
  try {
    throw_if_failed("cannot open the slide");
    const int32_t count = openslide_get_level_count(handle_);
    throw_if_failed("cannot read the level count");
    SG_CHECK(count > 0, path_, ": OpenSlide reports ", count, " levels");
    for (int32_t level = 0; level < count; ++level) {
      LevelSize size;
      openslide_get_level_dimensions(handle_, level, &size.width, &size.height);
      const double downsample = openslide_get_level_downsample(handle_, level);
      throw_if_failed(detail::concat("cannot read level ", level, "'s size"));
      SG_CHECK(size.width > 0 && size.height > 0 && downsample > 0, path_, ": level ", level, " has size ", size.width,
               "x", size.height, " and downsample ", downsample);
      levels_.push_back(size);
      downsamples_.push_back(downsample);
    }
  } catch (...) {
    openslide_close(handle_);
    throw;
  }
}

Slide::~Slide() {
  if (handle_ != nullptr) openslide_close(handle_);
}

std::string Slide::error() const {
  const char* message = openslide_get_error(handle_);
  return message != nullptr ? std::string(message) : std::string();
}

void Slide::throw_if_failed(const std::string& what) const {
  if (const char* message = openslide_get_error(handle_); message != nullptr)
    throw Error(detail::concat(path_, ": ", what, ": OpenSlide: ", message));
}

void Slide::check_level(int level, const char* what) const {
  SG_CHECK(level >= 0 && level < level_count(), path_, ": ", what, ": level ", level, " does not exist (the slide has ",
           level_count(), " levels, 0..", level_count() - 1, ")");
}

LevelSize Slide::level_dimensions(int level) const {
  check_level(level, "level_dimensions");
  return levels_[static_cast<size_t>(level)];
}

double Slide::level_downsample(int level) const {
  check_level(level, "level_downsample");
  return downsamples_[static_cast<size_t>(level)];
}

std::optional<std::string> Slide::property(const std::string& name) const {
  const char* value = openslide_get_property_value(handle_, name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::map<std::string, std::string> Slide::properties() const {
  std::map<std::string, std::string> result;
  const char* const* names = openslide_get_property_names(handle_);
  throw_if_failed("cannot list the properties");
  for (; names != nullptr && *names != nullptr; ++names)
    if (const char* value = openslide_get_property_value(handle_, *names); value != nullptr) result[*names] = value;
  return result;
}

std::string Slide::vendor() const { return property(OPENSLIDE_PROPERTY_NAME_VENDOR).value_or(""); }

std::optional<MicronsPerPixel> Slide::microns_per_pixel() const {
  auto number = [&](const std::string& name) -> std::optional<double> {
    const std::optional<std::string> text = property(name);
    if (!text) return std::nullopt;
    char* end = nullptr;
    const double value = std::strtod(text->c_str(), &end);
    if (end == text->c_str() || !(value > 0)) return std::nullopt;
    return value;
  };
  const auto mpp_x = number(OPENSLIDE_PROPERTY_NAME_MPP_X), mpp_y = number(OPENSLIDE_PROPERTY_NAME_MPP_Y);
  if (mpp_x && mpp_y) return MicronsPerPixel{*mpp_x, *mpp_y};
  // TIFF resolution: pixels per unit; 10,000 um per centimeter, 25,400 um per inch.
  const auto res_x = number("tiff.XResolution"), res_y = number("tiff.YResolution");
  const std::string unit = property("tiff.ResolutionUnit").value_or("");
  const double microns_per_unit = unit == "centimeter" ? 1e4 : unit == "inch" ? 25400.0 : 0.0;
  if (res_x && res_y && microns_per_unit > 0)
    return MicronsPerPixel{microns_per_unit / *res_x, microns_per_unit / *res_y};
  return std::nullopt;
}

Image Slide::read_region(int64_t x0, int64_t y0, int level, int w, int h) const {
  check_level(level, "read_region");
  SG_CHECK(w > 0 && h > 0, path_, ": read_region: size ", w, "x", h, " must be positive");
  const size_t count = static_cast<size_t>(w) * static_cast<size_t>(h);
  std::vector<uint32_t> argb(count);
  openslide_read_region(handle_, argb.data(), x0, y0, level, w, h);
  throw_if_failed(detail::concat("read_region(x0 ", x0, ", y0 ", y0, ", level ", level, ", ", w, "x", h, ") failed"));
  Image rgb(w, h, 3);
  argb_to_rgb(argb.data(), count, rgb.pixels.data());
  return rgb;
}

Image Slide::read_level(int level, int64_t strip_pixels) const {
  check_level(level, "read_level");
  SG_CHECK(strip_pixels > 0, path_, ": read_level: strip size ", strip_pixels, " must be positive");
  const LevelSize size = levels_[static_cast<size_t>(level)];
  SG_CHECK(size.width <= INT32_MAX && size.height <= INT32_MAX && size.width * size.height * 3 <= (int64_t(1) << 34),
           path_, ": read_level: level ", level, " is ", size.width, "x", size.height, ", too large to hold in memory");
  const int width = static_cast<int>(size.width), height = static_cast<int>(size.height);
  Image image(width, height, 3);
  // The strip's level-0 row is row * downsample:
  // exact for integer downsamples; for e.g. Karolinska's 4.0005 OpenSlide may resample by a
  // fraction of a pixel at strip borders.
  const int rows_per_strip = static_cast<int>(std::clamp<int64_t>(strip_pixels / width, 1, height));
  const double downsample = downsamples_[static_cast<size_t>(level)];
  std::vector<uint32_t> argb;
  for (int row = 0; row < height; row += rows_per_strip) {
    const int rows = std::min(rows_per_strip, height - row);
    argb.resize(static_cast<size_t>(width) * rows);
    const int64_t y0 = static_cast<int64_t>(std::llround(row * downsample));
    openslide_read_region(handle_, argb.data(), 0, y0, level, width, rows);
    throw_if_failed(detail::concat("read_level(", level, ") failed at rows ", row, "..", row + rows - 1));
    argb_to_rgb(argb.data(), argb.size(), image.row(row));
  }
  return image;
}

// ---- SlideCache --------------------------------------------------------------------------------

SlideCache::SlideCache(size_t capacity) : capacity_(capacity) {
  SG_CHECK(capacity > 0, "SlideCache: capacity must be positive, got 0");
}

std::shared_ptr<Slide> SlideCache::get(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = entries_.find(path); it != entries_.end()) {
      if (it->second.slide->error().empty()) {
        recency_.splice(recency_.begin(), recency_, it->second.recency);
        return it->second.slide;
      }
      recency_.erase(it->second.recency);  // a dead handle: reopen below
      entries_.erase(it);
    }
  }
  // Open without the lock so one slow open does not stall every worker; throws for bad files.
  auto opened = std::make_shared<Slide>(path);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = entries_.find(path); it != entries_.end()) {  // another thread got there first
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    return it->second.slide;
  }
  recency_.push_front(path);
  entries_.emplace(path, Entry{opened, recency_.begin()});
  while (entries_.size() > capacity_) {
    entries_.erase(recency_.back());
    recency_.pop_back();
  }
  return opened;
}

size_t SlideCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void SlideCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
  recency_.clear();
}

}  // namespace sg::data
