// slidegrade synth: a synthetic PANDA-like dataset (pyramidal JPEG TIFFs, lossless masks, CSVs)
// for the demo, the tests and the loader benchmarks.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "data/synthetic_slides.h"

namespace sg::cli {

void add_synth_command(CLI::App& app, Commands& commands) {
  struct Args {
    std::string out;
    data::SyntheticDatasetOptions options;
  };
  auto args = std::make_shared<Args>();
  CLI::App* parser = app.add_subcommand(
      "synth",
      "Write a synthetic PANDA-like dataset: train_images/, train_label_masks/, train.csv, test_images/, "
      "test.csv and test_truth.csv (the test slides' true grades)");
  parser->add_option("--out", args->out, "Output directory (created if missing)")->required();
  parser->add_option("--slides", args->options.train_slides, "Number of training slides")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  parser->add_option("--test-slides", args->options.test_slides, "Number of test slides (-1: max(1, slides / 5))")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1000000));
  parser->add_option("--seed", args->options.seed, "Seed: the same seed writes the same bytes")->capture_default_str();
  parser->add_option("--width", args->options.width, "Level-0 width in pixels")
      ->capture_default_str()
      ->check(CLI::Range(256, 200000));
  parser->add_option("--height", args->options.height, "Level-0 height in pixels")
      ->capture_default_str()
      ->check(CLI::Range(256, 200000));
  parser->add_option("--jpeg-quality", args->options.jpeg_quality, "JPEG quality of the slides")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  parser->add_option("--pen-marks", args->options.pen_mark_share, "Share of slides with pen strokes")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  parser->add_option("--threads", args->options.threads, "Slides written at once (0: one per CPU)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  commands.push_back(
      {parser, [args] {
         const auto start = std::chrono::steady_clock::now();
         const data::SyntheticDataset dataset = data::write_synthetic_dataset(args->out, args->options);
         const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
         std::printf("wrote %zu training slides (with masks) and %zu test slides of %dx%d px to %s in %.1f s\n",
                     dataset.train.size(), dataset.test.size(), args->options.width, args->options.height,
                     args->out.c_str(), seconds);
         return 0;
       }});
}

}  // namespace sg::cli
