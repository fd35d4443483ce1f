// libFuzzer target: data/image_io.h read_png (libspng underneath). A file is refused with an
// sg::Error or read as 1, 3 or 4 channels of the size its header gives; a file that reads is
// written back with write_png and must read back the same, bit for bit.
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "data/image_io.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "png");
  return sg::fuzz::run_reader([&] {
    const sg::data::Image image = sg::data::read_png(path);
    if (image.channels != 1 && image.channels != 3 && image.channels != 4) std::abort();
    if (image.pixels.size() != image.row_bytes() * size_t(image.height)) std::abort();
    static const std::string copy = "/tmp/sg_fuzz_" + std::to_string(static_cast<long>(::getpid())) + ".copy.png";
    sg::data::write_png(copy, image);
    const sg::data::Image back = sg::data::read_png(copy);
    if (back.width != image.width || back.height != image.height || back.channels != image.channels ||
        back.pixels != image.pixels)
      std::abort();
  });
}
