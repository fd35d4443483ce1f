#include "data/pyramid_tiff_writer.h"

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "data/opencv_view.h"

namespace sg::data {

namespace {

// libtiff reports errors through a handler; this one, set per file (libtiff >= 4.5), collects
// the text so the thrown message carries it, and keeps libtiff from printing to stderr.
struct TiffMessages {
  std::string errors;
};

int collect_tiff_error(TIFF*, void* user_data, const char* module, const char* format, va_list args) {
  char text[1024];
  std::vsnprintf(text, sizeof text, format, args);
  auto* messages = static_cast<TiffMessages*>(user_data);
  if (!messages->errors.empty()) messages->errors += "; ";
  messages->errors += (module != nullptr && *module != '\0') ? std::string(module) + ": " + text : std::string(text);
  return 1;  // handled: the global handler is not called
}

int ignore_tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* tiff) const { TIFFClose(tiff); }
};
struct TiffOptionsFree {
  void operator()(TIFFOpenOptions* options) const { TIFFOpenOptionsFree(options); }
};

// One open output file and the checks around every libtiff call.
class TiffOutput {
 public:
  TiffOutput(const std::string& path, const std::string& display_path, bool big) : display_path_(display_path) {
    std::unique_ptr<TIFFOpenOptions, TiffOptionsFree> options(TIFFOpenOptionsAlloc());
    SG_CHECK(options != nullptr, display_path_, ": libtiff cannot allocate its open options");
    TIFFOpenOptionsSetErrorHandlerExtR(options.get(), collect_tiff_error, &messages_);
    TIFFOpenOptionsSetWarningHandlerExtR(options.get(), ignore_tiff_warning, nullptr);
    tiff_.reset(TIFFOpenExt(path.c_str(), big ? "w8" : "w", options.get()));
    if (tiff_ == nullptr) fail("cannot create the file");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(detail::concat(display_path_, ": ", what,
                               messages_.errors.empty() ? std::string() : ": libtiff: " + messages_.errors));
  }

  template <class... Values>
  void set(uint32_t tag, const char* name, Values... values) {
    if (TIFFSetField(tiff_.get(), tag, values...) != 1) fail(detail::concat("cannot set tag ", name));
  }

  TIFF* get() const { return tiff_.get(); }
  // TIFFClose reports nothing: flush first, so a failed last write (a full disk) is an error.
  void close() {
    if (TIFFFlush(tiff_.get()) != 1) fail("cannot write the file");
    tiff_.reset();
  }

 private:
  std::string display_path_;
  TiffMessages messages_;
  std::unique_ptr<TIFF, TiffCloser> tiff_;
};

// A level's tile side along one axis: the requested size, or the largest multiple of 16 that fits
// the image when the image is smaller. OpenSlide 3.4.1 reads non-JPEG tiles through libtiff's
// RGBA interface, and libtiff 4.5 garbles a tile wider or taller than its image there.
int tile_side(int image_side, int tile_size) { return std::max(16, std::min(tile_size, image_side / 16 * 16)); }

// Writes tiles of one directory, one band of rows at a time.
class LevelWriter {
 public:
  LevelWriter(TiffOutput& out, int width, int height, int channels, const PyramidTiffOptions& options)
      : out_(out),
        width_(width),
        height_(height),
        channels_(channels),
        tile_width_(tile_side(width, options.tile_size)),
        tile_height_(tile_side(height, options.tile_size)),
        fill_(options.fill),
        tile_buffer_(static_cast<size_t>(tile_width_) * tile_height_ * channels) {}

  int tile_width() const { return tile_width_; }
  int tile_height() const { return tile_height_; }

  // band: rows y0 .. y0 + band.height - 1 of this level; y0 and band.height multiples of the tile
  // height, except that the band may end with the image.
  void write_band(int y0, const Image& band) {
    for (int ty = 0; ty < band.height; ty += tile_height_)
      for (int x0 = 0; x0 < width_; x0 += tile_width_) {
        std::fill(tile_buffer_.begin(), tile_buffer_.end(), fill_);
        const int cols = std::min(tile_width_, width_ - x0);
        const int rows = std::min({tile_height_, band.height - ty, height_ - y0 - ty});
        for (int r = 0; r < rows; ++r)
          std::copy_n(band.at(x0, ty + r), static_cast<size_t>(cols) * channels_,
                      tile_buffer_.data() + static_cast<size_t>(r) * tile_width_ * channels_);
        if (TIFFWriteTile(out_.get(), tile_buffer_.data(), static_cast<uint32_t>(x0), static_cast<uint32_t>(y0 + ty), 0,
                          0) < 0)
          out_.fail(detail::concat("cannot write the tile at (", x0, ", ", y0 + ty, ")"));
      }
  }

  void write_image(const Image& image) {
    for (int y0 = 0; y0 < image.height; y0 += tile_height_) {
      const int rows = std::min(tile_height_, image.height - y0);
      Image band(image.width, rows, image.channels);
      std::copy_n(image.row(y0), band.pixels.size(), band.pixels.data());
      write_band(y0, band);
    }
  }

 private:
  TiffOutput& out_;
  int width_, height_, channels_, tile_width_, tile_height_;
  uint8_t fill_;
  std::vector<uint8_t> tile_buffer_;
};

void set_directory_tags(TiffOutput& out, int width, int height, int channels, int downsample,
                        const PyramidTiffOptions& options) {
  using Compression = PyramidTiffOptions::Compression;
  if (downsample != 1) out.set(TIFFTAG_SUBFILETYPE, "SubFileType", uint32_t{FILETYPE_REDUCEDIMAGE});
  out.set(TIFFTAG_IMAGEWIDTH, "ImageWidth", static_cast<uint32_t>(width));
  out.set(TIFFTAG_IMAGELENGTH, "ImageLength", static_cast<uint32_t>(height));
  out.set(TIFFTAG_TILEWIDTH, "TileWidth", static_cast<uint32_t>(tile_side(width, options.tile_size)));
  out.set(TIFFTAG_TILELENGTH, "TileLength", static_cast<uint32_t>(tile_side(height, options.tile_size)));
  out.set(TIFFTAG_BITSPERSAMPLE, "BitsPerSample", 8);
  out.set(TIFFTAG_SAMPLESPERPIXEL, "SamplesPerPixel", channels);
  out.set(TIFFTAG_PLANARCONFIG, "PlanarConfiguration", PLANARCONFIG_CONTIG);
  const bool jpeg = options.compression == Compression::jpeg;
  out.set(TIFFTAG_COMPRESSION, "Compression", jpeg ? COMPRESSION_JPEG : COMPRESSION_ADOBE_DEFLATE);
  if (jpeg) {
    // Pseudo-tags of the JPEG codec: valid only after Compression is set.
    out.set(TIFFTAG_JPEGQUALITY, "JPEGQuality", options.jpeg_quality);
    if (channels == 3 && options.jpeg_ycbcr) {
      out.set(TIFFTAG_PHOTOMETRIC, "Photometric", PHOTOMETRIC_YCBCR);
      out.set(TIFFTAG_YCBCRSUBSAMPLING, "YCbCrSubsampling", 2, 2);
      out.set(TIFFTAG_JPEGCOLORMODE, "JPEGColorMode", JPEGCOLORMODE_RGB);  // we hand libtiff RGB
    } else {
      out.set(TIFFTAG_PHOTOMETRIC, "Photometric", channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    }
  } else {
    out.set(TIFFTAG_PHOTOMETRIC, "Photometric", channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    out.set(TIFFTAG_ZIPQUALITY, "ZipQuality", 6);
  }
  if (options.microns_per_pixel > 0) {
    const float pixels_per_cm = static_cast<float>(1e4 / (options.microns_per_pixel * downsample));
    out.set(TIFFTAG_RESOLUTIONUNIT, "ResolutionUnit", RESUNIT_CENTIMETER);
    out.set(TIFFTAG_XRESOLUTION, "XResolution", double{pixels_per_cm});
    out.set(TIFFTAG_YRESOLUTION, "YResolution", double{pixels_per_cm});
  }
  if (downsample == 1 && !options.description.empty())
    out.set(TIFFTAG_IMAGEDESCRIPTION, "ImageDescription", options.description.c_str());
}

void check_options(const std::string& path, int width, int height, int channels, const PyramidTiffOptions& options) {
  SG_CHECK(channels == 1 || channels == 3, path, ": a pyramid TIFF has 1 or 3 channels, got ", channels);
  SG_CHECK(options.tile_size >= 16 && options.tile_size % 16 == 0, path, ": tile size ", options.tile_size,
           " must be a positive multiple of 16 (TIFF)");
  SG_CHECK(!options.downsamples.empty() && options.downsamples.front() == 1, path,
           ": the first level's downsample must be 1");
  for (size_t i = 1; i < options.downsamples.size(); ++i) {
    const int d = options.downsamples[i];
    SG_CHECK(d > options.downsamples[i - 1] && options.tile_size % d == 0, path, ": downsample ", d,
             " must grow level by level and divide the tile size ", options.tile_size);
  }
  const int largest = options.downsamples.back();
  SG_CHECK(width / largest >= 16 && height / largest >= 16, path, ": a ", width, "x", height,
           " image is too small: its smallest level (downsample ", largest, ") must be at least 16x16 pixels");
  SG_CHECK(options.compression != PyramidTiffOptions::Compression::jpeg ||
               (options.jpeg_quality >= 1 && options.jpeg_quality <= 100),
           path, ": JPEG quality ", options.jpeg_quality, " must be in 1..100");
}

}  // namespace

void write_pyramid_tiff(const std::string& path, int width, int height, int channels, const BandRenderer& render,
                        const PyramidTiffOptions& options) {
  check_options(path, width, height, channels, options);
  // libtiff opens the temporary by name; a failure anywhere removes it (AtomicFile's destructor).
  AtomicFile file(path);
  {
    const bool big = static_cast<double>(width) * height * channels * 1.34 > 4.0e9;  // all levels, uncompressed
    TiffOutput out(file.temporary().string(), path, big);

    // Reduced levels, filled band by band while level 0 streams out.
    std::vector<Image> reduced;
    for (size_t i = 1; i < options.downsamples.size(); ++i)
      reduced.emplace_back(reduced_size(width, options.downsamples[i]), reduced_size(height, options.downsamples[i]),
                           channels, options.fill);

    set_directory_tags(out, width, height, channels, 1, options);
    LevelWriter level0(out, width, height, channels, options);
    const int interpolation =
        options.downscale == PyramidTiffOptions::Downscale::area ? cv::INTER_AREA : cv::INTER_NEAREST;
    Image band;
    for (int y0 = 0; y0 < height; y0 += options.tile_size) {
      const int rows = std::min(options.tile_size, height - y0);
      if (band.height != rows) band = Image(width, rows, channels);
      render(y0, band);
      SG_CHECK(band.width == width && band.height == rows && band.channels == channels, path,
               ": the renderer changed the band's size at row ", y0);
      level0.write_band(y0, band);
      for (size_t i = 0; i < reduced.size(); ++i) {
        // This band covers reduced rows [y0 / d, min((y0 + rows) / d, level height)), each from a
        // whole d x d block of the band, so bands join without seams.
        const int d = options.downsamples[i + 1];
        Image& level = reduced[i];
        const int first = y0 / d, last = std::min((y0 + rows) / d, level.height);
        if (last <= first) continue;
        const cv::Mat source = as_mat(band)(cv::Rect(0, 0, level.width * d, (last - first) * d));
        cv::Mat target = as_mat(level)(cv::Rect(0, first, level.width, last - first));
        cv::resize(source, target, target.size(), 0, 0, interpolation);
      }
    }
    if (TIFFWriteDirectory(out.get()) != 1) out.fail("cannot write level 0's directory");

    for (size_t i = 0; i < reduced.size(); ++i) {
      const Image& level = reduced[i];
      set_directory_tags(out, level.width, level.height, channels, options.downsamples[i + 1], options);
      LevelWriter(out, level.width, level.height, channels, options).write_image(level);
      if (TIFFWriteDirectory(out.get()) != 1) out.fail(detail::concat("cannot write level ", i + 1, "'s directory"));
    }
    out.close();
  }
  file.commit();
}

}  // namespace sg::data
