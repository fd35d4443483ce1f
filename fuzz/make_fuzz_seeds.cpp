// Writes seed inputs for the fuzz targets with our own writers, so the seeds always have the
// current format (a format change needs no re-committed binaries):
//   make_fuzz_seeds DIR   ->  DIR/fuzz_weight_file/{weights,weights_low_precision,checkpoint}.h5
//                             DIR/fuzz_slide_reader/{jpeg,deflate,one_level}.tiff
//                             DIR/fuzz_png/{grey,rgb,rgba}.png
// scripts/fuzz.sh runs it before fuzzing. Small files on purpose: libFuzzer mutates better and
// runs faster on a few kilobytes than on a real network's megabytes.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/image_io.h"
#include "data/pyramid_tiff_writer.h"
#include "weights/checkpoint_file.h"
#include "weights/weight_file.h"

namespace {

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.25f * float(i) - 1.0f;
  return v;
}

void write_weight_seeds(const std::filesystem::path& dir) {
  using sg::DType, sg::Tensor;
  std::vector<sg::NamedTensor> model = {
      {"stem.conv.weight", Tensor::from_floats(ramp(4 * 3 * 3 * 2), {4, 3, 3, 2})},
      {"stem.bn.bias", Tensor::from_floats(ramp(4), {4})},
      {"stem.bn.running_mean", Tensor::from_floats(ramp(4), {4})}};
  const sg::WeightAttributes attributes{"arch=b0 outputs=6", {{"source", "make_fuzz_seeds"}}};
  sg::save_weights((dir / "weights.h5").string(), model, attributes);

  std::vector<sg::NamedTensor> low = {{"a", Tensor::from_floats(ramp(6), {2, 3}, DType::f16)},
                                      {"b", Tensor::from_floats(ramp(5), {5}, DType::bf16)},
                                      {"c", Tensor::from_floats({1, 2}, {2}, DType::i32)}};
  sg::save_weights((dir / "weights_low_precision.h5").string(), low, {"", {}});

  sg::TrainingCheckpoint checkpoint;
  checkpoint.optimizer.kind = "adamw";
  checkpoint.optimizer.scalars = {{"lr", 3e-4}, {"step", 12}};
  checkpoint.optimizer.slots["stem.conv.weight"] = {{"exp_avg", Tensor::from_floats(ramp(72), {4, 3, 3, 2})}};
  checkpoint.optimizer.slots["stem.bn.bias"] = {{"exp_avg", Tensor::from_floats(ramp(4), {4}, DType::bf16)}};
  checkpoint.scheduler = {"cosine", {{"base_lr", 1e-3}, {"last_step", 11}}};
  checkpoint.progress.step = 12;
  checkpoint.progress.epoch = 1;
  checkpoint.progress.loss_scale = 65536.0;
  checkpoint.progress.counters = {{"loss_scale_growth_tracker", 3}};
  checkpoint.progress.values = {{"best_val_loss", 0.5}};
  checkpoint.progress.tensors = {{"sample_order", Tensor::from_floats({3, 0, 2, 1}, {4}, DType::i32)}};
  sg::save_checkpoint((dir / "checkpoint.h5").string(), model, attributes, checkpoint);
}

void write_slide_seeds(const std::filesystem::path& dir) {
  using sg::data::PyramidTiffOptions;
  // A gradient with a dark square: tissue for the detector, different tiles for the tiler.
  const auto render = [](int y0, sg::data::Image& band) {
    for (int y = 0; y < band.height; ++y)
      for (int x = 0; x < band.width; ++x)
        for (int c = 0; c < band.channels; ++c) {
          const bool dark = x > 64 && x < 160 && y0 + y > 32 && y0 + y < 96;
          band.pixels[(size_t(y) * band.width + x) * band.channels + c] =
              uint8_t(dark ? 80 + 20 * c : 255 - (x + y0 + y) / 8);
        }
  };
  PyramidTiffOptions jpeg;
  jpeg.tile_size = 64;
  jpeg.downsamples = {1, 4};
  sg::data::write_pyramid_tiff((dir / "jpeg.tiff").string(), 256, 128, 3, render, jpeg);
  PyramidTiffOptions deflate = jpeg;
  deflate.compression = PyramidTiffOptions::Compression::deflate;
  deflate.description = "seed for fuzz_slide_reader";
  sg::data::write_pyramid_tiff((dir / "deflate.tiff").string(), 256, 128, 3, render, deflate);
  PyramidTiffOptions one_level = jpeg;
  one_level.downsamples = {1};
  one_level.jpeg_ycbcr = false;
  one_level.tile_size = 16;
  sg::data::write_pyramid_tiff((dir / "one_level.tiff").string(), 48, 32, 3, render, one_level);
}

// write_png's three kinds, small; fuzz/corpus/fuzz_png/ holds the kinds it never writes.
void write_png_seeds(const std::filesystem::path& dir) {
  for (int channels : {1, 3, 4}) {
    sg::data::Image image(16, 8, channels);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t(i * 7 % 256);
    const char* name = channels == 1 ? "grey.png" : channels == 3 ? "rgb.png" : "rgba.png";
    sg::data::write_png((dir / name).string(), image);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds DIR\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir / "fuzz_weight_file");
    std::filesystem::create_directories(dir / "fuzz_slide_reader");
    std::filesystem::create_directories(dir / "fuzz_png");
    write_weight_seeds(dir / "fuzz_weight_file");
    write_slide_seeds(dir / "fuzz_slide_reader");
    write_png_seeds(dir / "fuzz_png");
  } catch (const sg::Error& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
