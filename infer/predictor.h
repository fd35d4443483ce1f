#pragma once
// The grader: trained model files (weights + model card, grading/model_card.h) -> a score and an
// ISUP grade per slide, with test-time augmentation (infer/tta.h) and ensembles.
//
// Per slide: the slide is tiled once (the models of an ensemble must share the tiling: TileSpec and
// mosaic grid), without augmentation; the mosaic's TTA views go through every model in batches
// (grading/model_input.h with each model's invert, mean and std); then
//   score   = the mean over views and models of grading::head_score (softmax: the expected grade
//             sum_k k p_k; binned: the sum of the 5 sigmoids; regression: the output). For a softmax
//             ensemble this equals the expected grade of the averaged probabilities, for a binned
//             one the sum of the averaged sigmoids (both are linear).
//   outputs = when every model has the same head: the mean class probabilities (softmax, 6), the
//             mean sigmoid of each output (binned, 5) or the mean output (regression, 1); empty for
//             a mixed ensemble.
//   grade   = from the thresholds: the first model's card thresholds when every card has the same,
//             else their element-wise mean (still non-decreasing). A softmax-only ensemble without
//             tuned thresholds (no card has thresholds_tuned) takes the argmax of the averaged
//             probabilities instead, as the trainer's validation does (grading/head.h head_grade).
// A slide that cannot be read (missing, not a slide, truncated, level missing) gets ok = false,
// the reason, and grade 0 (Kaggle wants a row per test image; callers list these). Running out of
// device memory is not a slide's fault: it stops the run (OutOfMemoryError naming the model, the
// slide and the view of the forward pass that failed, and the allocator's cap).
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "data/image.h"
#include "data/slide_mosaics.h"
#include "data/tta.h"
#include "grading/head.h"
#include "grading/model_card.h"
#include "grading/model_input.h"
#include "nn/efficientnet.h"

namespace sg::infer {

// Test-time augmentation lives in data/tta.h (the trainer's TTA validation uses it too).
using data::parse_tta_mode;
using data::tta_mode_name;
using data::tta_view_count;
using data::tta_views;
using data::TtaMode;

// One trained model, rebuilt from its file: eval mode, inference fusion on.
struct LoadedModel {
  std::string path;
  grading::ModelCard card;
  nn::EfficientNetConfig config;
  grading::InputNormalization input;
  std::unique_ptr<nn::EfficientNet> network;
};

// Throws sg::Error naming the file: missing file, no arch_config, no model card (e.g. ImageNet
// weights), an output count that does not fit the card's head, tensors that do not match.
LoadedModel load_trained_model(const std::string& path, Device device);

struct PredictorOptions {
  Device device = Device::cpu();
  TtaMode tta = TtaMode::none;
  int batch = 8;    // images (TTA views of slides) per forward pass
  int threads = 2;  // slides read and tiled at once (0: in the caller's thread)
};

struct SlidePrediction {
  std::string image_id;
  std::string path;
  bool ok = false;
  std::string error;  // why the slide could not be graded (ok = false)
  double score = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> outputs;  // see above; empty when failed or for a mixed ensemble
  int grade = 0;                // 0 (fallback) when failed
};

// Called after each loader batch: slides done so far (graded or failed) of the total.
using PredictProgress = std::function<void(int64_t done, int64_t total)>;

class Predictor {
 public:
  // Loads every model (errors name the file; models with different tilings: an error naming both
  // files and both tilings).
  Predictor(const std::vector<std::string>& model_paths, const PredictorOptions& options);
  ~Predictor();

  const PredictorOptions& options() const { return options_; }
  const std::vector<LoadedModel>& models() const { return models_; }
  // The shared tiling, without augmentation.
  const data::MosaicRecipe& recipe() const { return recipe_; }
  const grading::Thresholds& thresholds() const { return thresholds_; }
  bool thresholds_agree() const { return thresholds_agree_; }
  bool argmax_grades() const { return argmax_; }
  // The head every model has; nullopt for a mixed ensemble.
  std::optional<grading::HeadKind> common_head() const { return common_head_; }
  // Column names of SlidePrediction::outputs: p0..p5, sigmoid1..sigmoid5, output; empty if mixed.
  std::vector<std::string> output_names() const;

  // Scores mosaics (any shape of at least 32 px; each expanded into its TTA views) through every
  // model. The results have ok = true and no id or path. `names` (one per mosaic, e.g. the slide
  // ids; default "mosaic i") name the slide and view in an out-of-memory message.
  std::vector<SlidePrediction> predict_mosaics(const std::vector<data::Image>& mosaics,
                                               const std::vector<std::string>& names = {}) const;
  // Every slide, in order: tiled by `threads` workers, scored in batches.
  std::vector<SlidePrediction> predict(const std::vector<data::SlideItem>& slides,
                                       const PredictProgress& progress = {}) const;

 private:
  PredictorOptions options_;
  std::vector<LoadedModel> models_;
  data::MosaicRecipe recipe_;
  grading::Thresholds thresholds_ = grading::kDefaultThresholds;
  bool thresholds_agree_ = true;
  bool argmax_ = false;
  std::optional<grading::HeadKind> common_head_;
};

}  // namespace sg::infer
