// PNG files: grey, RGB and RGBA round-trip exactly and are stored as such; the reader is checked
// against files built here byte by byte (no PNG library involved): channel order, low bit depths,
// grey+alpha, palettes, tRNS, interlacing, and the refusals (16-bit, not a PNG, truncated, bad
// CRC, too large), each naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"

namespace sg::data {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// ---- PNG files built by hand: chunks with their CRC-32, pixel data as stored (uncompressed)
// deflate blocks inside a zlib stream with its Adler-32.

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string chunk(const std::string& type, const std::string& data) {
  return be32(uint32_t(data.size())) + type + data + be32(crc32(type + data));
}

std::string zlib_stored(const std::string& raw) {
  std::string out = "\x78\x01";
  size_t at = 0;
  do {
    const size_t n = std::min<size_t>(raw.size() - at, 65535);
    const bool last = at + n == raw.size();
    out += char(last ? 1 : 0);
    out += {char(n & 0xff), char(n >> 8), char(~n & 0xff), char((~n >> 8) & 0xff)};
    out += raw.substr(at, n);
    at += n;
  } while (at < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char byte : raw) a = (a + byte) % 65521, b = (b + a) % 65521;
  return out + be32(b << 16 | a);
}

struct PngSpec {
  uint32_t width = 1, height = 1;
  int bit_depth = 8, color_type = 0, interlace = 0;
  std::string before_idat = "";  // PLTE, tRNS, ... chunks, already built
  std::string scanlines = "";    // the filtered rows (filter byte first), as the IDAT stream holds them
};

std::string png_file(const PngSpec& spec) {
  const std::string ihdr = be32(spec.width) + be32(spec.height) +
                           std::string{char(spec.bit_depth), char(spec.color_type), 0, 0, char(spec.interlace)};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + spec.before_idat +
         chunk("IDAT", zlib_stored(spec.scanlines)) + chunk("IEND", "");
}

// Rows of raw bytes, each behind filter byte 0 (none).
std::string unfiltered(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) out += '\0' + row;
  return out;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += char(v);
  return out;
}

std::vector<uint8_t> pixels(std::initializer_list<int> values) {
  return std::vector<uint8_t>(values.begin(), values.end());
}

class ImageIoTest : public ::testing::Test {
 protected:
  // Writes a hand-built file and reads it back.
  Image read_built(const std::string& name, const PngSpec& spec) {
    const std::string path = dir_.file(name);
    write_bytes(path, png_file(spec));
    return read_png(path);
  }
  testing::TempDir dir_;
};

TEST_F(ImageIoTest, PngRoundTripsEveryChannelCount) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (int channels : {1, 3, 4}) {
    for (auto [width, height] : {std::pair{37, 23}, std::pair{1, 1}, std::pair{300, 2}}) {
      Image image(width, height, channels);
      for (uint8_t& v : image.pixels) v = uint8_t(rng.integer(0, 255));
      const std::string path = dir_.file(std::to_string(channels) + "ch.png");
      write_png(path, image);
      // Stored as 8-bit grey (colour type 0), RGB (2) or RGBA (6): IHDR bytes 24 and 25.
      const std::string file = read_bytes(path);
      ASSERT_GT(file.size(), 26u);
      EXPECT_EQ(file.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
      EXPECT_EQ(int(file[24]), 8);
      EXPECT_EQ(int(file[25]), channels == 1 ? 0 : channels == 3 ? 2 : 6);
      const Image back = read_png(path);
      EXPECT_EQ(std::make_tuple(back.width, back.height, back.channels), std::make_tuple(width, height, channels));
      EXPECT_EQ(back.pixels, image.pixels) << channels << " channels, " << width << "x" << height;
    }
  }
  // Overwriting replaces the file; no temporary file is left behind.
  write_png(dir_.file("3ch.png"), Image(2, 2, 3, 7));
  EXPECT_EQ(read_png(dir_.file("3ch.png")).pixels, std::vector<uint8_t>(12, 7));
  EXPECT_EQ(names_in(dir_.path()), (std::vector<std::string>{"1ch.png", "3ch.png", "4ch.png"}));
}

TEST_F(ImageIoTest, RgbIsReadInFileOrder) {
  // A red and a green pixel in a file no PNG library wrote: read as R, G, B.
  PngSpec rgb{.width = 2, .color_type = 2, .scanlines = unfiltered({bytes({255, 0, 0, 0, 255, 0})})};
  const Image image = read_built("rgb.png", rgb);
  EXPECT_EQ(image.channels, 3);
  EXPECT_EQ(image.pixels, pixels({255, 0, 0, 0, 255, 0}));
  PngSpec rgba{.width = 1, .color_type = 6, .scanlines = unfiltered({bytes({1, 2, 3, 4})})};
  EXPECT_EQ(read_built("rgba.png", rgba).pixels, pixels({1, 2, 3, 4}));
  // And what write_png stores reads back the same, so it stores R, G, B too.
  write_png(dir_.file("red.png"), image);
  EXPECT_EQ(read_png(dir_.file("red.png")).pixels, image.pixels);
}

TEST_F(ImageIoTest, LowBitDepthGreyIsScaledTo8Bits) {
  PngSpec one_bit{.width = 10, .bit_depth = 1, .scanlines = unfiltered({bytes({0b10100000, 0b01000000})})};
  const Image a = read_built("grey1.png", one_bit);
  EXPECT_EQ(a.channels, 1);
  EXPECT_EQ(a.pixels, pixels({255, 0, 255, 0, 0, 0, 0, 0, 0, 255}));
  PngSpec four_bit{.width = 3, .bit_depth = 4, .scanlines = unfiltered({bytes({0x0f, 0x70})})};
  EXPECT_EQ(read_built("grey4.png", four_bit).pixels, pixels({0, 255, 7 * 17}));
}

TEST_F(ImageIoTest, GreyAlphaBecomesRgba) {
  PngSpec grey_alpha{.width = 2, .color_type = 4, .scanlines = unfiltered({bytes({10, 200, 77, 0})})};
  const Image image = read_built("ga.png", grey_alpha);
  EXPECT_EQ(image.channels, 4);
  EXPECT_EQ(image.pixels, pixels({10, 10, 10, 200, 77, 77, 77, 0}));
}

TEST_F(ImageIoTest, PaletteBecomesRgbOrRgbaWithTransparency) {
  const std::string plte = chunk("PLTE", bytes({255, 0, 0, 0, 128, 0, 1, 2, 3}));
  // 2-bit indices 2, 0, 1: one byte, 0b10'00'01'00.
  PngSpec palette{
      .width = 3, .bit_depth = 2, .color_type = 3, .before_idat = plte, .scanlines = unfiltered({bytes({0b10000100})})};
  const Image rgb = read_built("palette.png", palette);
  EXPECT_EQ(rgb.channels, 3);
  EXPECT_EQ(rgb.pixels, pixels({1, 2, 3, 255, 0, 0, 0, 128, 0}));
  // tRNS gives the first two entries an alpha (the third stays opaque): RGBA.
  palette.before_idat = plte + chunk("tRNS", bytes({0, 100}));
  const Image rgba = read_built("palette_trns.png", palette);
  EXPECT_EQ(rgba.channels, 4);
  EXPECT_EQ(rgba.pixels, pixels({1, 2, 3, 255, 255, 0, 0, 0, 0, 128, 0, 100}));
  // An index past the palette reads as black (as libpng, under OpenCV's imread, gave it), not
  // from outside the palette.
  palette.before_idat = plte;
  palette.scanlines = unfiltered({bytes({0b11100100})});
  EXPECT_EQ(read_built("past_palette.png", palette).pixels, pixels({0, 0, 0, 1, 2, 3, 0, 128, 0}));
}

TEST_F(ImageIoTest, TransparentColourKey) {
  // RGB with tRNS: RGBA, alpha 0 where the pixel has that colour.
  PngSpec rgb{.width = 2,
              .color_type = 2,
              .before_idat = chunk("tRNS", bytes({0, 5, 0, 6, 0, 7})),
              .scanlines = unfiltered({bytes({5, 6, 7, 5, 6, 8})})};
  const Image rgba = read_built("rgb_trns.png", rgb);
  EXPECT_EQ(rgba.channels, 4);
  EXPECT_EQ(rgba.pixels, pixels({5, 6, 7, 0, 5, 6, 8, 255}));
  // Grey with tRNS: still one channel, the key ignored (as OpenCV's imread did).
  PngSpec grey{.width = 2, .before_idat = chunk("tRNS", bytes({0, 9})), .scanlines = unfiltered({bytes({9, 10})})};
  const Image g = read_built("grey_trns.png", grey);
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.pixels, pixels({9, 10}));
}

TEST_F(ImageIoTest, InterlacedFilesAreRead) {
  // Adam7 on 2x2 grey: pass 1 holds (0,0), pass 6 (1,0), pass 7 the second row; the rest are empty.
  PngSpec grey{
      .width = 2, .height = 2, .interlace = 1, .scanlines = unfiltered({bytes({11}), bytes({22}), bytes({33, 44})})};
  const Image image = read_built("interlaced.png", grey);
  EXPECT_EQ(image.pixels, pixels({11, 22, 33, 44}));
}

TEST_F(ImageIoTest, SixteenBitPngsAreRefused) {
  PngSpec grey16{.width = 1, .bit_depth = 16, .scanlines = unfiltered({bytes({1, 2})})};
  const std::string path = dir_.file("grey16.png");
  write_bytes(path, png_file(grey16));
  const std::string error = error_of([&] { read_png(path); });
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("16-bit grey PNG"), std::string::npos) << error;
  PngSpec rgba16{.width = 1, .bit_depth = 16, .color_type = 6, .scanlines = unfiltered({std::string(8, '\1')})};
  write_bytes(path, png_file(rgba16));
  EXPECT_NE(error_of([&] { read_png(path); }).find("16-bit RGBA PNG"), std::string::npos);
}

TEST_F(ImageIoTest, BrokenFilesAreRefusedNamingThePath) {
  const std::string missing = dir_.file("missing.png");
  EXPECT_NE(error_of([&] { read_png(missing); }).find(missing), std::string::npos);
  EXPECT_NE(error_of([&] { read_png(dir_.path().string()); }).find("directory"), std::string::npos);

  const std::string not_png = dir_.file("not.png");
  write_bytes(not_png, "hello, this is not a picture\n");
  std::string error = error_of([&] { read_png(not_png); });
  EXPECT_NE(error.find(not_png), std::string::npos) << error;
  EXPECT_NE(error.find("not a PNG"), std::string::npos) << error;
  for (const char* content : {"", "hello"}) {
    const std::string short_file = dir_.file("short.png");
    write_bytes(short_file, content);
    error = error_of([&] { read_png(short_file); });
    EXPECT_NE(error.find(short_file), std::string::npos) << error;
    EXPECT_NE(error.find("not a PNG"), std::string::npos) << error;
  }

  // A good file (random pixels: they do not compress), then cut, damaged and cut before IEND.
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Image image(64, 64, 3);
  for (uint8_t& v : image.pixels) v = uint8_t(rng.integer(0, 255));
  const std::string good = dir_.file("good.png");
  write_png(good, image);
  const std::string file = read_bytes(good);
  ASSERT_GT(file.size(), 12000u);
  const std::string cut = dir_.file("cut.png");
  for (size_t size : {size_t(8), size_t(20), size_t(40), file.size() / 2, file.size() - 12}) {
    write_bytes(cut, file.substr(0, size));
    error = error_of([&] { read_png(cut); });
    EXPECT_NE(error.find(cut), std::string::npos) << size << " bytes: " << error;
  }
  std::string damaged = file;
  damaged[file.size() / 2] = char(damaged[file.size() / 2] ^ 0x40);
  write_bytes(cut, damaged);
  error = error_of([&] { read_png(cut); });
  EXPECT_NE(error.find(cut), std::string::npos) << error;

  // A header claiming 2^31 pixels is refused before anything that size is allocated.
  PngSpec huge{.width = 1u << 16, .height = 1u << 15, .scanlines = unfiltered({""})};
  const std::string huge_path = dir_.file("huge.png");
  write_bytes(huge_path, png_file(huge));
  EXPECT_NE(error_of([&] { read_png(huge_path); }).find("larger than"), std::string::npos);
}

TEST_F(ImageIoTest, WriteErrorsNameThePath) {
  const Image red(2, 1, 3, 0);
  const std::string no_dir = dir_.file("no_such_dir/x.png");
  EXPECT_NE(error_of([&] { write_png(no_dir, red); }).find(no_dir), std::string::npos);
  const std::string path = dir_.file("x.png");
  EXPECT_NE(error_of([&] { write_png(path, Image(3, 3, 2)); }).find("2-channel"), std::string::npos);
  EXPECT_NE(error_of([&] { write_png(path, Image()); }).find("empty"), std::string::npos);
  // A folder where the file should go: the rename fails, the folder stays and no temporary is left.
  std::filesystem::create_directory(path);
  EXPECT_NE(error_of([&] { write_png(path, red); }).find(path), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(names_in(dir_.path()), (std::vector<std::string>{"x.png"}));
}

}  // namespace
}  // namespace sg::data
