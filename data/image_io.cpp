#include "data/image_io.h"

#include <spng.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "core/atomic_file.h"

namespace sg::data {
namespace {

// OpenCV's own default limit (CV_IO_MAX_IMAGE_PIXELS): a corrupt header cannot make us allocate
// more than 4 GiB (RGBA) for one image.
constexpr uint64_t kMaxPixels = uint64_t(1) << 30;

struct SpngFree {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using SpngContext = std::unique_ptr<spng_ctx, SpngFree>;

// The reader's file: closing a file opened read-only has nothing to report.
struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileClose>;

// The buffer spng_get_png_buffer hands over (allocated with malloc: spng's default allocator).
struct MallocFree {
  void operator()(void* p) const { std::free(p); }
};

// Throws "<path>: <what>: <libspng's message>" when `rc` is not SPNG_OK.
void check_spng(int rc, const std::string& path, const char* what) {
  if (rc != SPNG_OK) throw Error(detail::concat(path, ": ", what, ": ", spng_strerror(rc)));
}

const char* color_type_name(uint8_t color_type) {
  switch (color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
      return "grey";
    case SPNG_COLOR_TYPE_TRUECOLOR:
      return "RGB";
    case SPNG_COLOR_TYPE_INDEXED:
      return "palette";
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
      return "grey+alpha";
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
      return "RGBA";
    default:
      return "unknown colour type";
  }
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  SG_CHECK(!image.empty(), path, ": cannot write an empty image as PNG");
  SG_CHECK(image.channels == 1 || image.channels == 3 || image.channels == 4, path, ": cannot write a ", image.channels,
           "-channel image as PNG (expected 1, 3 or 4)");
  SG_CHECK(image.pixels.size() == image.row_bytes() * size_t(image.height), path, ": image of ", image.width, "x",
           image.height, "x", image.channels, " holds ", image.pixels.size(), " bytes");

  SpngContext ctx(spng_ctx_new(SPNG_CTX_ENCODER));
  SG_CHECK(ctx, path, ": cannot create a PNG encoder (out of memory)");
  check_spng(spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1), path, "PNG encoder setup failed");
  // Fast compression, as OpenCV's imwrite used by default (zlib level 1): tiles and masks are
  // written often, and a smaller file is not worth three times the time.
  check_spng(spng_set_option(ctx.get(), SPNG_IMG_COMPRESSION_LEVEL, 1), path, "PNG encoder setup failed");
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(image.width);
  ihdr.height = static_cast<uint32_t>(image.height);
  ihdr.bit_depth = 8;
  ihdr.color_type = image.channels == 1   ? SPNG_COLOR_TYPE_GRAYSCALE
                    : image.channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR
                                          : SPNG_COLOR_TYPE_TRUECOLOR_ALPHA;
  ihdr.compression_method = 0;
  ihdr.filter_method = 0;
  ihdr.interlace_method = SPNG_INTERLACE_NONE;
  check_spng(spng_set_ihdr(ctx.get(), &ihdr), path, "cannot write a PNG header");
  check_spng(spng_encode_image(ctx.get(), image.pixels.data(), image.pixels.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE),
             path, "encoding PNG failed");
  size_t size = 0;
  int rc = SPNG_OK;
  const std::unique_ptr<void, MallocFree> png(spng_get_png_buffer(ctx.get(), &size, &rc));
  check_spng(rc, path, "encoding PNG failed");
  SG_CHECK(png != nullptr && size > 0, path, ": encoding PNG failed: no output");
  write_file_atomically(path, std::string_view(static_cast<const char*>(png.get()), size));
}

Image read_png(const std::string& path) {
  // fopen succeeds on a folder; say what is wrong instead of a decoder error.
  std::error_code error;
  SG_CHECK(!std::filesystem::is_directory(path, error), path, ": cannot read: it is a directory");
  File file(std::fopen(path.c_str(), "rb"));
  SG_CHECK(file, path, ": cannot open: ", std::strerror(errno));

  SpngContext ctx(spng_ctx_new(0));
  SG_CHECK(ctx, path, ": cannot create a PNG decoder (out of memory)");
  check_spng(spng_set_png_file(ctx.get(), file.get()), path, "PNG decoder setup failed");
  // Ancillary chunks (text, ICC profiles, ...) are not used: a few MiB of them are plenty, and a
  // file cannot make the decoder hold more.
  check_spng(spng_set_chunk_limits(ctx.get(), size_t(1) << 24, size_t(1) << 26), path, "PNG decoder setup failed");

  spng_ihdr ihdr{};
  const int header_rc = spng_get_ihdr(ctx.get(), &ihdr);
  if (header_rc == SPNG_ESIGNATURE) throw Error(detail::concat(path, ": not a PNG file (no PNG signature)"));
  if (header_rc == SPNG_IO_EOF || header_rc == SPNG_EOF)
    throw Error(detail::concat(path, ": not a PNG file, or one cut before the end of its header"));
  check_spng(header_rc, path, "reading PNG header failed");
  SG_CHECK(ihdr.bit_depth <= 8, path, ": ", int(ihdr.bit_depth), "-bit ", color_type_name(ihdr.color_type),
           " PNG: only 8-bit (or lower) PNGs are read");
  SG_CHECK(uint64_t(ihdr.width) * ihdr.height <= kMaxPixels, path, ": PNG of ", ihdr.width, "x", ihdr.height,
           " pixels is larger than the 2^30 pixels read");

  // The output layout, as imread(IMREAD_UNCHANGED) chose it (see the header).
  int format = 0, channels = 0, flags = 0;
  switch (ihdr.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
      format = SPNG_FMT_G8, channels = 1;
      break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
      format = SPNG_FMT_RGBA8, channels = 4;
      break;
    case SPNG_COLOR_TYPE_TRUECOLOR:
    case SPNG_COLOR_TYPE_INDEXED: {
      spng_trns trns{};
      const int trns_rc = spng_get_trns(ctx.get(), &trns);
      if (trns_rc == SPNG_OK) {
        format = SPNG_FMT_RGBA8, channels = 4, flags = SPNG_DECODE_TRNS;
      } else if (trns_rc == SPNG_ECHUNKAVAIL) {
        format = SPNG_FMT_RGB8, channels = 3;
      } else {
        check_spng(trns_rc, path, "reading PNG failed");
      }
      break;
    }
    default:
      throw Error(detail::concat(path, ": PNG colour type ", int(ihdr.color_type), " is not one PNG defines"));
  }

  size_t size = 0;
  check_spng(spng_decoded_image_size(ctx.get(), format, &size), path, "reading PNG failed");
  SG_CHECK(size == uint64_t(ihdr.width) * ihdr.height * channels, path, ": unexpected decoded PNG size ", size);
  Image image(static_cast<int>(ihdr.width), static_cast<int>(ihdr.height), channels);
  check_spng(spng_decode_image(ctx.get(), image.pixels.data(), image.pixels.size(), format, flags), path,
             "reading PNG failed (corrupt or truncated file?)");
  // The chunks after the image, up to IEND: a file cut after its pixel data is refused too.
  check_spng(spng_decode_chunks(ctx.get()), path, "reading PNG failed after the image data (truncated file?)");
  return image;
}

}  // namespace sg::data
