// libFuzzer target: data/slide_reader.h on TIFF input, and what the pipeline does next with a
// level it read: open (OpenSlide 3.4.1 through libtiff), levels, downsamples, properties, microns
// per pixel, a region at the origin, the smallest level (when it is small enough to read in a
// fuzz iteration), tissue detection and the PANDA tiler on it. OpenSlide and libtiff are not
// instrumented: a crash inside them is reported as a SEGV there, our code's faults by ASan/UBSan.
#include <algorithm>

#include "data/slide_reader.h"
#include "data/tiler.h"
#include "data/tissue_detection.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "tiff");
  return sg::fuzz::run_reader([&] {
    const sg::data::Slide slide(path);
    (void)slide.properties();
    (void)slide.vendor();
    (void)slide.microns_per_pixel();
    const int last = slide.level_count() - 1;
    for (int level = 0; level <= last; ++level) (void)slide.level_downsample(level);
    const sg::data::LevelSize level0 = slide.level_dimensions(0);
    (void)slide.read_region(0, 0, 0, int(std::min<int64_t>(level0.width, 64)), int(std::min<int64_t>(level0.height, 64)));
    const sg::data::LevelSize smallest = slide.level_dimensions(last);
    if (smallest.width * smallest.height > (int64_t(1) << 20)) return;
    const sg::data::Image image = slide.read_level(last);
    (void)sg::data::detect_tissue(image, slide.level_downsample(last));
    sg::data::TileSpec spec;
    spec.count = 4;
    spec.size = 16;
    spec.level = last;
    (void)sg::data::tile_level(image, spec);
  });
}
