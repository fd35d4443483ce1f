// slidegrade grade --models M1.h5 [M2.h5 ...] --data DIR: Kaggle's submission (image_id,isup_grade)
// for every test slide, from one trained model or an ensemble, with optional TTA (infer/predictor.h).
//
// Slides: every row of DIR/test.csv (slides in DIR/test_images/), or, without a test.csv, every
// *.tiff in DIR/test_images/ (or DIR itself), label masks (*_mask.tiff) left out, in name order.
// A slide that cannot be read still gets a row (grade 0: Kaggle wants one per test image); it is
// listed on stderr with the reason and marked `failed` in the details file.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"
#include "data/grades_csv.h"
#include "infer/predictor.h"
#include "infer/grade_shards.h"
#include "infer/slide_list.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct GradeOptions {
  std::vector<std::string> models;
  std::string data;
  std::string tta = "none";
  std::string out = "submission.csv";
  std::string details;
  std::string device = "auto";
  std::string memory_limit;  // "" : no cap
  int batch = 8;
  int threads = 2;
  std::string shard;  // "K/N", "": every slide
};

int run_grade(const GradeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  infer::PredictorOptions options;
  options.device = parse_device(o.device);
  options.tta = infer::parse_tta_mode(o.tta);
  options.batch = o.batch;
  options.threads = o.threads;
  const std::optional<infer::GradeShard> shard =
      o.shard.empty() ? std::nullopt : std::optional(infer::parse_grade_shard(o.shard));
  const infer::SlidesToGrade all =
      infer::list_slides_to_grade(o.data);  // before loading models: a bad folder fails fast
  const infer::SlidesToGrade list = shard ? infer::grade_shard(all, *shard) : all;
  if (!o.shard.empty())
    std::fprintf(stderr, "shard %s: %zu of %zu slides (join the parts with slidegrade merge-grades)\n", o.shard.c_str(),
                 list.slides.size(), all.slides.size());
  // The cap covers the models' weights too, so it is set before they are loaded.
  const ScopedMemoryLimit memory_limit(options.device, o.memory_limit.empty() ? 0 : parse_bytes(o.memory_limit));
  allocator_for(options.device).reset_peak();
  std::fprintf(stderr, "%s\n", memory_limit_text(options.device, allocator_for(options.device).stats().limit).c_str());
  const infer::Predictor predictor(o.models, options);
  const data::MosaicRecipe& recipe = predictor.recipe();
  std::fprintf(stderr, "grading %s\n", list.source.c_str());
  std::fprintf(stderr,
               "%zu model(s) on %s; %d tiles of %d px at level %d, %dx%d mosaic; TTA %s (%d views); "
               "thresholds %s%s\n",
               predictor.models().size(), options.device.str().c_str(), recipe.tiles.count, recipe.tiles.size,
               recipe.tiles.level, recipe.rows, recipe.cols, infer::tta_mode_name(options.tta),
               infer::tta_view_count(options.tta), grading::thresholds_text(predictor.thresholds()).c_str(),
               predictor.argmax_grades()       ? " (softmax, untuned: argmax of the mean probabilities)"
               : !predictor.thresholds_agree() ? " (mean of the models' thresholds)"
                                               : "");
  const bool terminal = ::isatty(STDERR_FILENO);
  const std::vector<infer::SlidePrediction> rows =
      predictor.predict(list.slides, [terminal](int64_t done, int64_t total) {
        if (terminal)
          std::fprintf(stderr, "\r  %lld / %lld slides", static_cast<long long>(done), static_cast<long long>(total));
      });
  if (terminal) std::fprintf(stderr, "\n");

  std::vector<data::SlideGrade> grades;
  int64_t failed = 0;
  for (const infer::SlidePrediction& p : rows) {
    grades.push_back({p.image_id, p.grade, 0});
    if (!p.ok) {
      ++failed;
      std::fprintf(stderr, "slide %s not graded (fallback grade 0): %s\n", p.image_id.c_str(), p.error.c_str());
    }
  }
  data::write_grades_csv(o.out, grades);
  if (!o.details.empty()) infer::write_details_csv(o.details, list, rows, predictor.output_names());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t graded = int64_t(rows.size()) - failed;
  std::printf("graded %lld slides, %lld not graded (grade 0 written); %.1f s, %.2f slides/s\n",
              static_cast<long long>(graded), static_cast<long long>(failed), seconds,
              seconds > 0 ? double(graded) / seconds : 0.0);
  std::printf("submission: %s\n", o.out.c_str());
  if (!o.details.empty()) std::printf("details: %s\n", o.details.c_str());
  std::fprintf(stderr, "%s\n", memory_peak_text(options.device, allocator_for(options.device).stats()).c_str());
  return 0;
}
}  // namespace

void add_grade_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<GradeOptions>();
  CLI::App* parser =
      app.add_subcommand("grade",
                         "Grade test slides with trained models (an ensemble averages them; optional TTA): Kaggle's "
                         "image_id,isup_grade file and a details CSV");
  parser->add_option("--models", o->models, "trained weight files (best.h5 of `slidegrade train`)")
      ->required()
      ->expected(1, -1);
  parser->add_option("--data", o->data, "folder with test.csv and test_images/, or with *.tiff slides")->required();
  parser->add_option("--tta", o->tta, "test-time augmentation: none, flips (4 views) or dihedral (8 views)")
      ->capture_default_str()
      ->transform(train::word_choice(data::kTtaModeWords));
  parser->add_option("--out", o->out, "Kaggle submission file to write")->capture_default_str();
  parser->add_option("--details", o->details,
                     "also write image_id,data_provider,score,<probabilities or sigmoids>,isup_grade,status");
  parser->add_option("--device", o->device, "where to run; auto: the GPU if there is one")
      ->capture_default_str()
      ->check(train::device_choice());
  parser->add_option("--memory-limit,--memory_limit", o->memory_limit,
                     "cap the device's allocator (4GiB, 512MiB, 2GB; weights, activations and scratch count); "
                     "default: no cap")
      ->check(train::memory_limit_choice());
  parser->add_option("--batch", o->batch, "images (TTA views) per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  parser->add_option("--shard", o->shard,
                     "K/N: grade only every N-th slide from the K-th (0 <= K < N), for one task of N; "
                     "slidegrade merge-grades joins the parts");
  parser->add_option("--threads", o->threads, "slides read and tiled at once")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  commands.push_back({parser, [o] { return run_grade(*o); }});
}

}  // namespace sg::cli
