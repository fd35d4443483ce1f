#include "infer/predictor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "core/allocator.h"
#include "core/error.h"
#include "data/async_loader.h"
#include "data/mosaic.h"
#include "nn/context.h"
#include "nn/efficientnet_config_text.h"
#include "weights/weight_file.h"

namespace sg::infer {

namespace {

std::string tiling_text(const grading::ModelCard& card) {
  const data::MosaicGrid grid = data::mosaic_grid(card.tiles.count, card.mosaic_rows, card.mosaic_cols);
  return detail::concat(card.tiles.count, " tiles of ", card.tiles.size, " px at level ", card.tiles.level,
                        card.tiles.half_offset ? " (half offset)" : "", " in a ", grid.rows, "x", grid.cols, " mosaic");
}

bool same_tiling(const grading::ModelCard& a, const grading::ModelCard& b) {
  const data::MosaicGrid ga = data::mosaic_grid(a.tiles.count, a.mosaic_rows, a.mosaic_cols);
  const data::MosaicGrid gb = data::mosaic_grid(b.tiles.count, b.mosaic_rows, b.mosaic_cols);
  return a.tiles == b.tiles && ga.rows == gb.rows && ga.cols == gb.cols;
}

// What one model's logits add to a slide: softmax probabilities, sigmoids or the raw output.
void add_outputs(grading::HeadKind kind, std::span<const float> logits, std::vector<double>& sum) {
  switch (kind) {
    case grading::HeadKind::softmax: {
      const float top = *std::max_element(logits.begin(), logits.end());
      double total = 0;
      std::vector<double> e(logits.size());
      for (size_t k = 0; k < logits.size(); ++k) total += e[k] = std::exp(double(logits[k]) - double(top));
      for (size_t k = 0; k < logits.size(); ++k) sum[k] += e[k] / total;
      break;
    }
    case grading::HeadKind::binned:
      for (size_t k = 0; k < logits.size(); ++k) sum[k] += 1.0 / (1.0 + std::exp(-double(logits[k])));
      break;
    case grading::HeadKind::regression:
      sum[0] += double(logits[0]);
      break;
  }
}

}  // namespace

LoadedModel load_trained_model(const std::string& path, Device device) {
  std::error_code error;
  SG_CHECK(std::filesystem::is_regular_file(path, error), path, ": no such model file");
  const WeightFileInfo info = read_weight_file_info(path);
  SG_CHECK(!info.attributes.arch_config.empty(), path, ": no arch_config attribute (not a slidegrade network?)");
  LoadedModel model;
  model.path = path;
  model.card = grading::read_model_card(info.attributes, path);
  model.config = nn::parse_config_text(info.attributes.arch_config, path);
  SG_CHECK(model.config.outputs == grading::head_outputs(model.card.head), path, ": the network has ",
           model.config.outputs, " outputs but its card says head=", grading::head_kind_name(model.card.head), " (",
           grading::head_outputs(model.card.head), " outputs)");
  model.input.invert = model.card.invert;
  model.input.mean = model.config.mean;
  model.input.std = model.config.std;
  model.network = std::make_unique<nn::EfficientNet>(model.config, device);
  load_weights(path, named_tensors(model.network->parameters(), model.network->buffers()));
  model.network->set_training(false);
  model.network->set_inference_fusion(true);
  return model;
}

Predictor::Predictor(const std::vector<std::string>& model_paths, const PredictorOptions& options) : options_(options) {
  SG_CHECK(!model_paths.empty(), "grade: no model files given");
  SG_CHECK(options_.batch >= 1, "grade: batch must be at least 1, got ", options_.batch);
  SG_CHECK(options_.threads >= 0, "grade: threads must be 0 or more, got ", options_.threads);
  for (const std::string& path : model_paths) {
    const AllocationScope scope("loading the model " + path,
                                "the models' weights alone do not fit (every model of the ensemble is held at once): "
                                "raise --memory-limit, or grade with fewer models");
    LoadedModel model = load_trained_model(path, options_.device);
    if (!models_.empty()) {
      const LoadedModel& first = models_.front();
      SG_CHECK(same_tiling(first.card, model.card), "models of an ensemble must share the tiling: ", first.path,
               " has ", tiling_text(first.card), ", ", path, " has ", tiling_text(model.card));
    }
    models_.push_back(std::move(model));
  }
  const grading::ModelCard& card = models_.front().card;
  recipe_.tiles = card.tiles;
  const data::MosaicGrid grid = data::mosaic_grid(card.tiles.count, card.mosaic_rows, card.mosaic_cols);
  recipe_.rows = grid.rows;
  recipe_.cols = grid.cols;
  recipe_.shuffle_tiles = false;
  recipe_.augment = data::AugmentConfig::none();

  common_head_ = card.head;
  bool any_tuned = false;
  std::array<double, 5> sum{};
  for (const LoadedModel& m : models_) {
    if (m.card.head != card.head) common_head_.reset();
    if (m.card.thresholds != card.thresholds) thresholds_agree_ = false;
    any_tuned = any_tuned || m.card.thresholds_tuned;
    for (size_t i = 0; i < 5; ++i) sum[i] += m.card.thresholds[i];
  }
  thresholds_ = card.thresholds;
  if (!thresholds_agree_)
    for (size_t i = 0; i < 5; ++i) thresholds_[i] = float(sum[i] / double(models_.size()));
  argmax_ = common_head_ == grading::HeadKind::softmax && !any_tuned;
}

Predictor::~Predictor() = default;

std::vector<std::string> Predictor::output_names() const {
  std::vector<std::string> names;
  if (!common_head_) return names;
  switch (*common_head_) {
    case grading::HeadKind::softmax:
      for (int k = 0; k < 6; ++k) names.push_back(detail::concat("p", k));
      break;
    case grading::HeadKind::binned:
      for (int k = 1; k <= 5; ++k) names.push_back(detail::concat("sigmoid", k));
      break;
    case grading::HeadKind::regression:
      names.push_back("output");
      break;
  }
  return names;
}

std::vector<SlidePrediction> Predictor::predict_mosaics(const std::vector<data::Image>& mosaics,
                                                       const std::vector<std::string>& names) const {
  SG_CHECK(names.empty() || names.size() == mosaics.size(), "grade: ", names.size(), " names for ", mosaics.size(),
           " mosaics");
  // Every view of every mosaic, which mosaic it belongs to and which view it is.
  std::vector<data::Image> views;
  std::vector<size_t> owner;
  std::vector<int> view_number;  // 1-based within its mosaic
  for (size_t i = 0; i < mosaics.size(); ++i) {
    const data::Image& m = mosaics[i];
    SG_CHECK(
        m.channels == 3 && m.width >= nn::EfficientNet::kMinImageSize && m.height >= nn::EfficientNet::kMinImageSize,
        "grade: mosaic ", i, " is ", m.width, "x", m.height, "x", m.channels, "; expected RGB of at least ",
        nn::EfficientNet::kMinImageSize, " px a side");
    int number = 0;
    for (data::Image& v : tta_views(m, options_.tta)) {
      views.push_back(std::move(v));
      owner.push_back(i);
      view_number.push_back(++number);
    }
  }
  // Views of one shape go through the network together (quarter turns of a non-square mosaic
  // swap its sides).
  std::map<std::pair<int, int>, std::vector<size_t>> by_shape;
  for (size_t v = 0; v < views.size(); ++v) by_shape[{views[v].height, views[v].width}].push_back(v);

  const size_t output_count = common_head_ ? size_t(grading::head_outputs(*common_head_)) : 0;
  std::vector<double> score_sum(mosaics.size(), 0.0);
  std::vector<std::vector<double>> output_sum(mosaics.size(), std::vector<double>(output_count, 0.0));
  const size_t batch = size_t(options_.batch);
  const int view_count = tta_view_count(options_.tta);
  // "slide X, view k of V": how an out-of-memory message names the images of a forward pass.
  const auto view_text = [&](size_t v) {
    const size_t i = owner[v];
    return detail::concat("slide ", names.empty() ? detail::concat("mosaic ", i) : names[i], ", view ", view_number[v],
                          " of ", view_count);
  };
  const std::string advice = detail::concat(
      "use a smaller --batch (now ", options_.batch, " images per forward pass; with --tta each slide is ", view_count,
      " of them), or raise --memory-limit");
  std::vector<uint8_t> pixels;
  for (const LoadedModel& model : models_) {
    const size_t outputs = size_t(model.config.outputs);
    for (const auto& [shape, members] : by_shape) {
      const auto [height, width] = shape;
      const size_t image_bytes = size_t(height) * size_t(width) * 3;
      for (size_t begin = 0; begin < members.size(); begin += batch) {
        const size_t count = std::min(batch, members.size() - begin);
        const AllocationScope scope(detail::concat("grading ", view_text(members[begin]),
                                                   count > 1 ? " to " + view_text(members[begin + count - 1]) : "",
                                                   " (", count, " images, ", height, "x", width, ", model ", model.path,
                                                   ")"),
                                    advice);
        pixels.resize(count * image_bytes);
        for (size_t j = 0; j < count; ++j)
          std::memcpy(pixels.data() + j * image_bytes, views[members[begin + j]].pixels.data(), image_bytes);
        Tensor x = grading::mosaics_to_input(pixels, int64_t(count), height, width, model.input);
        if (!options_.device.is_cpu()) x = x.to(options_.device);
        nn::Context ctx;  // inference: nothing kept for backward
        const std::vector<float> logits = model.network->forward(ctx, x).to(Device::cpu()).to_floats();
        SG_CHECK(logits.size() == count * outputs, model.path, ": the network returned ", logits.size(), " values for ",
                 count, " images of ", outputs, " outputs");
        for (size_t j = 0; j < count; ++j) {
          const std::span<const float> row(logits.data() + j * outputs, outputs);
          const size_t slide = owner[members[begin + j]];
          score_sum[slide] += grading::head_score(model.card.head, row);
          if (common_head_) add_outputs(*common_head_, row, output_sum[slide]);
        }
      }
    }
  }

  const double per_slide = double(models_.size()) * double(tta_view_count(options_.tta));
  std::vector<SlidePrediction> out(mosaics.size());
  for (size_t i = 0; i < mosaics.size(); ++i) {
    SlidePrediction& p = out[i];
    p.ok = true;
    p.score = score_sum[i] / per_slide;
    p.outputs = output_sum[i];
    for (double& v : p.outputs) v /= per_slide;
    if (argmax_)
      p.grade = int(std::max_element(p.outputs.begin(), p.outputs.end()) - p.outputs.begin());
    else
      p.grade = grading::grade_from_score(p.score, thresholds_);
  }
  return out;
}

std::vector<SlidePrediction> Predictor::predict(const std::vector<data::SlideItem>& slides,
                                                const PredictProgress& progress) const {
  std::vector<SlidePrediction> out(slides.size());
  for (size_t i = 0; i < slides.size(); ++i) {
    out[i].image_id = slides[i].id;
    out[i].path = slides[i].path;
    out[i].error = "not graded";
  }
  if (slides.empty()) return out;

  const data::SlideMosaics mosaics(slides, recipe_, std::make_shared<data::SlideCache>(4));
  data::AsyncLoaderConfig config;
  config.sample_shape = recipe_.sample_shape();
  // Enough slides per loader batch to fill a forward pass with their views.
  config.batch_size = std::max(1, options_.batch / tta_view_count(options_.tta));
  config.workers = options_.threads;
  config.queue_depth = 2;
  config.shuffle = false;
  config.device = options_.device;
  config.item_name = [&slides](int64_t item) { return slides[size_t(item)].path; };
  data::AsyncLoader loader(config, int64_t(slides.size()), mosaics.sample_function());

  int64_t done = 0;
  size_t skipped_seen = 0;
  while (std::optional<data::Batch> batch = loader.next()) {
    std::vector<data::Image> images;
    images.reserve(size_t(batch->size()));
    for (int i = 0; i < batch->size(); ++i) {
      const std::span<const uint8_t> sample = batch->sample(i);
      data::Image image(config.sample_shape.width, config.sample_shape.height, 3);
      std::memcpy(image.pixels.data(), sample.data(), sample.size());
      images.push_back(std::move(image));
    }
    std::vector<std::string> names;
    for (int i = 0; i < batch->size(); ++i) names.push_back(slides[size_t(batch->items()[size_t(i)])].id);
    const std::vector<SlidePrediction> scored = predict_mosaics(images, names);
    for (int i = 0; i < batch->size(); ++i) {
      const size_t item = size_t(batch->items()[size_t(i)]);
      SlidePrediction& p = out[item];
      p.ok = true;
      p.error.clear();
      p.score = scored[size_t(i)].score;
      p.outputs = scored[size_t(i)].outputs;
      p.grade = scored[size_t(i)].grade;
    }
    const std::vector<data::SkippedItem> skipped = loader.skipped_items();
    done += batch->size() + int64_t(skipped.size() - skipped_seen);
    skipped_seen = skipped.size();
    if (progress) progress(done, int64_t(slides.size()));
  }
  for (const data::SkippedItem& s : loader.skipped_items()) {
    SlidePrediction& p = out[size_t(s.item)];
    p.ok = false;
    p.error = s.message;
    p.grade = 0;
  }
  if (progress && done != int64_t(slides.size())) progress(int64_t(slides.size()), int64_t(slides.size()));
  return out;
}

}  // namespace sg::infer
