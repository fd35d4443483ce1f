// `slidegrade train` end to end (train/trainer.h): data and folds, the loaders, the model, the
// optimisation loop, validation, the run folder's files and resume.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "core/allocator.h"
#include "core/atomic_file.h"
#include "core/cuda/device_code.h"
#include "core/device.h"
#include "core/error.h"
#include "core/stream.h"
#include "core/usage_error.h"
#include "data/async_loader.h"
#include "data/kfold.h"
#include "data/panda_dataset.h"
#include "data/slide_mosaics.h"
#include "data/tile_cache.h"
#include "data/tta.h"
#include "grading/head.h"
#include "grading/model_card.h"
#include "grading/model_input.h"
#include "kernels/activation.h"
#include "kernels/linear.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "nn/head.h"
#include "nn/precision.h"
#include "train/augment_preset.h"
#include "train/head_loss.h"
#include "train/memory_plan.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"
#include "train/plots.h"
#include "train/run_config_cli.h"
#include "train/time_report.h"
#include "train/train_step.h"
#include "weights/checkpoint_file.h"
#include "weights/pretrained.h"
#include "weights/weight_file.h"

namespace sg::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// ---------------------------------------------------------------- files

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// "%.17g" for exact round trips, "nan" for an undefined value.
std::string number(double value) {
  if (!std::isfinite(value)) return "nan";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}
std::string number(const std::optional<double>& value) { return value ? number(*value) : "nan"; }
std::string seconds_text(double value) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.4f", value);
  return buffer;
}

// ---------------------------------------------------------------- the saved config

// The resolved config, RUNDIR/config.toml (train/run_config_cli.h).
void write_run_config(const fs::path& dir, const RunConfig& config) {
  write_file_atomically(dir / "config.toml", run_config_toml(config));
}

// Throws when RUNDIR/config.toml holds another config (keys that change what a run computes).
void check_resume_config(const fs::path& dir, const RunConfig& config) {
  const fs::path path = dir / "config.toml";
  SG_CHECK(fs::is_regular_file(path), dir.string(), ": not a run folder (no config.toml) to resume");
  const std::vector<std::string> differences = run_config_differences(read_run_config(path.string()), config);
  if (differences.empty()) return;
  std::string list;
  for (const std::string& d : differences) list += "\n  " + d;
  throw UsageError(detail::concat(dir.string(), ": the run folder belongs to another config (", path.string(),
                                  "); refusing to resume. Differences (saved -> given):", list));
}

// ---------------------------------------------------------------- data

struct SlideRow {
  data::PandaRow row;
  std::string path;
  int fold = 0;
};

// Deterministic shuffle (std::shuffle's algorithm is the library's choice; this is not).
template <class T>
void seeded_shuffle(std::vector<T>& values, uint64_t seed) {
  std::mt19937_64 random(seed);
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[size_t(random() % i)]);
}

// A stratified share of the rows (by provider and grade), at least one per stratum, in the
// rows' order.
std::vector<SlideRow> stratified_subset(const std::vector<SlideRow>& rows, double fraction, uint64_t seed) {
  if (fraction >= 1.0) return rows;
  std::map<std::pair<int, int>, std::vector<size_t>> strata;
  for (size_t i = 0; i < rows.size(); ++i) strata[{int(rows[i].row.provider), rows[i].row.isup_grade}].push_back(i);
  std::vector<size_t> kept;
  uint64_t stratum_seed = seed;
  for (auto& [key, indices] : strata) {
    seeded_shuffle(indices, ++stratum_seed);
    const size_t n = std::max<size_t>(1, size_t(std::llround(fraction * double(indices.size()))));
    kept.insert(kept.end(), indices.begin(), indices.begin() + std::ptrdiff_t(std::min(n, indices.size())));
  }
  std::sort(kept.begin(), kept.end());
  std::vector<SlideRow> out;
  for (size_t i : kept) out.push_back(rows[i]);
  return out;
}

std::vector<data::SlideItem> slide_items(const std::vector<SlideRow>& rows) {
  std::vector<data::SlideItem> items;
  for (const SlideRow& r : rows) items.push_back({r.row.image_id, r.path, r.row.isup_grade});
  return items;
}

data::AugmentConfig augment_config(const std::string& name) {
  const AugmentPreset preset = parse_word(kAugmentPresetWords, name);
  if (preset == AugmentPreset::standard) return data::AugmentConfig{};
  if (preset == AugmentPreset::none) return data::AugmentConfig::none();
  data::AugmentConfig light = data::AugmentConfig::none();
  light.tile = {0.5f, 0.5f, 0.5f, 0.0f};
  light.mosaic = {0.5f, 0.5f, 0.5f, 0.0f};
  light.hue_probability = 0.3f;
  light.hue_degrees = {-4.0f, 4.0f};
  light.brightness_probability = 0.3f;
  light.brightness_shift = {-0.05f, 0.05f};
  light.contrast_probability = 0.3f;
  light.contrast_factor = {0.95f, 1.05f};
  return light;
}

// ---------------------------------------------------------------- the model

nn::EfficientNetConfig model_config(const RunConfig& config, grading::HeadKind head) {
  const int64_t outputs = grading::head_outputs(head);
  nn::EfficientNetConfig c =
      config.pretrained.empty() ? nn::efficientnet_config(config.arch) : pretrained_config(config.pretrained, outputs);
  c.outputs = outputs;
  if (config.width > 0) c.width = config.width;
  if (config.depth > 0) c.depth = config.depth;
  if (!config.activation.empty()) c.activation = parse_activation(config.activation);
  c.pooling = nn::parse_head_pooling(config.pooling);
  if (config.dropout >= 0) c.dropout = config.dropout;
  if (config.drop_connect >= 0) c.drop_connect = config.drop_connect;
  c.seed = config.seed;
  return c;
}

nn::CheckpointPolicy checkpoint_policy(const RunConfig& config, const nn::EfficientNetConfig& model, DType precision,
                                       int64_t height, int64_t width, Device device,
                                       const std::function<void(const std::string&)>& say) {
  nn::CheckpointPolicy policy = nn::parse_checkpoint_policy(config.checkpointing);
  if (!policy.is_automatic()) return policy;
  if (config.memory_limit.empty()) {
    say("checkpointing auto: no memory_limit given, so no blocks are checkpointed");
    return nn::CheckpointPolicy::none();
  }
  MemoryPlanRequest request;
  request.config = model;
  request.batch = config.batch;
  request.height = height;
  request.width = width;
  request.activations = precision;
  request.optimizer_states = optimizer_state_count(config.optimizer);
  request.cuda = device.is_cuda();
  if (device.is_cuda()) request.cuda_arch = cuda::code_architecture(device.index);
  request.cublas_workspace_held = cublas_workspace_bytes_held(device) > 0;  // a later fold: an earlier one took it
  const size_t budget = parse_bytes(config.memory_limit);
  const std::optional<nn::CheckpointPolicy> chosen = choose_checkpointing(request, budget);
  SG_CHECK(chosen.has_value(), "checkpointing auto: batch ", config.batch, " of ", height, "x", width,
           " does not fit memory_limit ", config.memory_limit, " even with every block checkpointed");
  say("checkpointing auto for memory_limit " + config.memory_limit + ": " + chosen->str());
  return *chosen;
}

// What an out-of-memory message inside a training step advises, given the checkpointing in force
// (core/allocator.h AllocationScope).
std::string training_memory_advice(const nn::CheckpointPolicy& policy) {
  const char* batch = "a smaller --batch (--accumulate keeps the effective batch: batch x accumulate)";
  switch (policy.kind) {
    case nn::CheckpointPolicy::Kind::none:
      return detail::concat("turn on gradient checkpointing (--checkpointing every, or --checkpointing auto with "
                            "--memory-limit; config key checkpointing), use ",
                            batch, ", or raise --memory-limit");
    case nn::CheckpointPolicy::Kind::every_block:
      return detail::concat("gradient checkpointing is already on for every block (--checkpointing every): use ",
                            batch, ", smaller mosaics (--tiles, --tile_size), --precision f16, or raise --memory-limit");
    default:
      return detail::concat("checkpoint more blocks (--checkpointing every; now ", policy.str(), "), use ", batch,
                            ", or raise --memory-limit");
  }
}

std::vector<NamedTensor> model_tensors(nn::EfficientNet& model) {
  return named_tensors(model.parameters(), model.buffers());
}

// ---------------------------------------------------------------- checkpoints

OptimizerState optimizer_state(const Optimizer& optimizer) {
  OptimizerState state;
  state.kind = std::string(optimizer.kind());
  state.scalars["steps_taken"] = double(optimizer.steps_taken());
  state.scalars["lr"] = optimizer.lr();
  for (const nn::Buffer& b : optimizer.state()) {
    const size_t slash = b.name.rfind('/');
    SG_CHECK(slash != std::string::npos, "optimizer state '", b.name, "': expected <param>/<slot>");
    state.slots[b.name.substr(0, slash)][b.name.substr(slash + 1)] = b.value;
  }
  return state;
}

void restore_optimizer(Optimizer& optimizer, const OptimizerState& state, const std::string& path) {
  SG_CHECK(state.kind == optimizer.kind(), path, ": optimizer ", state.kind, ", the config's is ", optimizer.kind());
  std::vector<nn::Buffer> tensors;
  for (const auto& [param, slots] : state.slots)
    for (const auto& [slot, tensor] : slots) tensors.push_back({param + "/" + slot, tensor});
  const auto steps = state.scalars.find("steps_taken");
  SG_CHECK(steps != state.scalars.end(), path, ": the optimizer state has no steps_taken");
  optimizer.load_state(tensors, int64_t(steps->second));
}

// ---------------------------------------------------------------- losses on the host (validation)

// One slide's loss under the head's training loss (no label smoothing): the mean over its outputs.
double slide_loss(grading::HeadKind head, std::span<const float> logits, int grade) {
  switch (head) {
    case grading::HeadKind::softmax: {
      const float top = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      for (float v : logits) sum += std::exp(double(v) - top);
      return std::log(sum) + top - double(logits[size_t(grade)]);
    }
    case grading::HeadKind::binned: {
      std::array<float, 5> targets{};
      grading::head_targets(head, grade, targets);
      double total = 0;
      for (size_t i = 0; i < logits.size(); ++i) {
        const double x = logits[i], y = targets[i];
        total += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
      }
      return total / double(logits.size());
    }
    case grading::HeadKind::regression: {
      const double d = double(logits[0]) - grade;
      return d * d;
    }
  }
  return 0;
}

// ---------------------------------------------------------------- metrics

const char* const kMetricsHeader =
    "epoch,step,lr,train_loss,val_loss,val_qwk,val_qwk_karolinska,val_qwk_radboud,val_accuracy,epoch_seconds,"
    "images_per_second,load_seconds,copy_seconds,forward_seconds,backward_seconds,optimizer_seconds,"
    "validation_seconds,device_wait_fraction,skipped_steps,loss_scale";

struct EpochParts {
  double epoch = 0, load = 0, copy = 0, forward = 0, backward = 0, optimizer = 0, validation = 0, training = 0;
  int64_t images = 0;
};

// The time report (train/time_report.h) of the epochs run in this process, with the device and
// the training throughput in front.
std::string time_report(const std::vector<EpochParts>& epochs, Device device) {
  if (epochs.empty()) return "no epoch ran in this process: no timings";
  std::vector<EpochTimes> parts;
  double load = 0, training = 0;
  int64_t images = 0;
  for (const EpochParts& e : epochs) {
    parts.push_back({e.load, e.copy, e.forward, e.backward, e.optimizer, e.validation, e.epoch});
    load += e.load;
    training += e.training;
    images += e.images;
  }
  char head[224];
  std::snprintf(head, sizeof head,
                "device %s: %.1f images/s in training (copy: uint8 batches to the device and their "
                "normalisation there; on a GPU the copy overlaps the previous step)\n",
                device.str().c_str(), training > 0 ? double(images) / training : 0.0);
  return head + format_time_report(parts, training > 0 ? load / training : -1.0);
}

struct ValidationResult {
  double loss = 0;
  grading::KappaReport kappa;
  std::vector<std::string> oof_rows;  // oof_predictions.csv lines, the validation items' order
};

// ---------------------------------------------------------------- one fold

class FoldRun {
 public:
  FoldRun(const RunConfig& config, int fold, fs::path dir, const fs::path& folds_path, const TrainOptions& options,
          const TrainerEvents& events)
      : config_(config),
        fold_(fold),
        dir_(std::move(dir)),
        folds_path_(folds_path),
        options_(options),
        events_(events) {}

  // The steps below, in order: check the config, split the data, open the device, build the
  // loaders, the model and the optimizer, resume or start fresh, run the epochs, report.
  FoldResult run();

 private:
  // What one epoch's training pass (before validation) adds up.
  struct TrainingPass {
    double loss_sum = 0;        // over the epoch's completed steps
    int64_t loss_count = 0;
    int64_t skipped_steps = 0;  // f16: steps skipped for non-finite gradients (the scale halved)
    int64_t micro_batches = 0;
    double lr = 0;              // the learning rate of the epoch's last step
  };

  void say(const std::string& line) const {
    if (events_.message) events_.message(line);
  }
  // Head and precision from their words; the numbers that must be positive.
  void check_config();
  void prepare_data();
  // The training device, its copy stream and the config's memory cap.
  void open_device();
  // Tile cache, mosaic recipes and the two AsyncLoaders (training: shuffled and augmented).
  void build_loaders();
  // The network (pretrained backbone, precision, checkpointing policy) and its input's normalisation.
  void build_model();
  // Optimizer, learning-rate schedule (steps per epoch from the loader) and the training step.
  void build_optimizer_and_schedule();
  // Restores last.h5 when resuming (returns the first epoch to run), else clears the folder of an
  // earlier run's files (returns 0).
  int resume_or_start_fresh(AllocationScope& setup_scope);
  void restore_checkpoint(const fs::path& last);
  void remove_earlier_run_files();
  // Says once in the run log that a loader's batch buffers could not be pinned.
  void note_pinning(const data::AsyncLoader& loader);
  // u8 mosaics [n, h, w, 3] on the training device -> the network's input there, in the model's
  // precision, normalised on the compute stream (grading/model_input.h).
  Tensor model_input(const Tensor& pixels) const;
  // The head's training targets of a batch's grades, on the training device.
  Tensor training_targets(const data::Batch& batch) const;
  // One epoch: training, validation, metrics and checkpoints; returns where its time went.
  EpochParts run_epoch(int epoch);
  TrainingPass train_one_epoch(int epoch, Clock::time_point epoch_start, EpochParts& t);
  void report_step(int epoch, const TrainingPass& pass, float loss, Clock::time_point epoch_start,
                   const EpochParts& t) const;
  ValidationResult validate(int epoch);
  // The epoch's metrics.csv row.
  std::string metrics_row(int epoch, const TrainingPass& pass, const ValidationResult& validation,
                          const std::optional<double>& qwk, const EpochParts& t) const;
  void report_epoch(int epoch, const TrainingPass& pass, const ValidationResult& validation,
                    const std::optional<double>& qwk, bool best, double seconds) const;
  void write_best(int epoch, const ValidationResult& validation, const std::optional<double>& qwk);
  void write_checkpoint(int epochs_done);
  // The fold's result: best epoch, skipped slides, the time report.
  FoldResult result(const std::vector<EpochParts>& times);

  const RunConfig& config_;
  int fold_;
  fs::path dir_;
  fs::path folds_path_;
  const TrainOptions& options_;
  const TrainerEvents& events_;
  std::optional<ScopedMemoryLimit> memory_limit_;  // the config's cap, for this fold's run only

  grading::HeadKind head_ = grading::HeadKind::binned;
  DType precision_ = DType::f32;
  Device device_;
  std::vector<SlideRow> train_rows_, val_rows_;
  std::vector<std::string> skipped_;
  nn::EfficientNetConfig model_config_;
  std::unique_ptr<nn::EfficientNet> model_;
  std::string step_advice_;  // what an out-of-memory message in a training step suggests
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrScheduler> scheduler_;
  std::unique_ptr<TrainStep> train_step_;
  int64_t steps_per_epoch_ = 0, micro_batches_per_epoch_ = 0;
  std::unique_ptr<data::AsyncLoader> train_loader_, val_loader_;
  // Batches go to the device on the copy stream (CUDA; from the loader's pinned buffers) while
  // the previous step computes on the compute stream, the default stream, where TrainStep and
  // validation run; the compute stream waits for each upload's event (data::DeviceBatch::wait).
  Stream copy_stream_;
  const Stream compute_stream_;
  bool said_pageable_ = false;
  grading::InputNormalization normalization_;
  data::MosaicRecipe train_recipe_, val_recipe_;
  std::vector<std::string> metrics_rows_;
  std::optional<double> best_qwk_;
  int best_epoch_ = -1;
};

void FoldRun::prepare_data() {
  const fs::path data_dir = config_.data;
  const fs::path csv = data_dir / "train.csv";
  SG_CHECK(fs::is_directory(data_dir), config_.data, ": no such data folder");
  SG_CHECK(fs::is_regular_file(csv), config_.data, ": no train.csv in the data folder (expected ", csv.string(), ")");
  data::PandaReadOptions read_options;
  read_options.exclude_known_bad = config_.exclude_known_bad;
  const data::PandaDataset dataset = data::read_panda_train_csv(csv.string(), read_options);
  SG_CHECK(!dataset.rows.empty(), csv.string(), ": no slides");
  SG_CHECK(config_.folds >= 2, "folds ", config_.folds, ": expected at least 2");
  SG_CHECK(fold_ >= 0 && fold_ < config_.folds, "fold ", fold_, ": expected 0..", config_.folds - 1, " (folds ",
           config_.folds, ")");
  const data::Folds folds = data::load_or_make_folds(folds_path_.string(), dataset, config_.folds, config_.fold_seed);

  const std::vector<std::string> missing = data::missing_panda_slides(dataset, data_dir);
  const std::set<std::string> missing_ids(missing.begin(), missing.end());
  for (const std::string& id : missing) {
    const std::string line = data::panda_slide_path(data_dir, id).string() + ": missing on disk";
    skipped_.push_back(line);
    say("skipping " + line);
  }
  for (size_t i = 0; i < dataset.rows.size(); ++i) {
    const data::PandaRow& row = dataset.rows[i];
    if (missing_ids.count(row.image_id)) continue;
    SlideRow r{row, data::panda_slide_path(data_dir, row.image_id).string(), folds.fold[i]};
    (r.fold == fold_ ? val_rows_ : train_rows_).push_back(std::move(r));
  }
  SG_CHECK(!val_rows_.empty(), "fold ", fold_, " of ", config_.folds, " is empty: no validation slide (",
           dataset.rows.size(), " slides, ", missing.size(), " missing on disk; ", folds_path_.string(), ")");
  SG_CHECK(!train_rows_.empty(), "fold ", fold_, ": no training slide left (", dataset.rows.size(), " slides)");
  const size_t all_train = train_rows_.size();
  train_rows_ = stratified_subset(train_rows_, config_.train_fraction, config_.seed ^ 0x7472616e66726163ull);
  say("fold " + std::to_string(fold_) + ": " + std::to_string(train_rows_.size()) + " training slides" +
      (train_rows_.size() != all_train ? " (of " + std::to_string(all_train) + ", train_fraction)" : "") + ", " +
      std::to_string(val_rows_.size()) + " validation slides");
}

void FoldRun::note_pinning(const data::AsyncLoader& loader) {
  if (said_pageable_ || !device_.is_cuda()) return;
  const std::string why = loader.pinning_failure();
  if (why.empty()) return;
  said_pageable_ = true;
  say("host batches are in pageable memory: " + why + "; each copy to " + device_.str() +
      " now finishes before the step it feeds starts (slower, same results)");
}

Tensor FoldRun::model_input(const Tensor& pixels) const {
  return grading::normalize_mosaics(pixels, model_->precision(), normalization_, compute_stream_);
}

ValidationResult FoldRun::validate(int epoch) {
  ValidationResult result;
  model_->set_training(false);
  val_loader_->start_epoch(epoch);
  const data::SampleShape shape = val_recipe_.sample_shape();
  double loss_sum = 0;
  int64_t count = 0;
  const int outputs = grading::head_outputs(head_);
  int64_t batch_number = 0;
  const int64_t batch_count = val_loader_->batches_per_epoch();
  while (std::optional<data::Batch> batch = val_loader_->next()) {
    const AllocationScope scope(
        detail::concat("validation after epoch ", epoch + 1, ", batch ", ++batch_number, "/", batch_count),
        "use a smaller --batch (validation runs batches of --batch slides), or raise --memory-limit");
    const int64_t n = batch->size();
    // tta_validation: the mean of the logits over the dihedral views (data/tta.h, as the grader's;
    // the 4 flips for a non-square mosaic, whose quarter turns would change the batch's shape).
    const data::TtaMode mode = !config_.tta_validation      ? data::TtaMode::none
                               : shape.height == shape.width ? data::TtaMode::dihedral
                                                             : data::TtaMode::flips;
    const int views = data::tta_view_count(mode);
    const size_t image_bytes = size_t(shape.height) * size_t(shape.width) * 3;
    std::vector<std::vector<uint8_t>> view_pixels(static_cast<size_t>(views));
    if (views > 1) {
      for (std::vector<uint8_t>& v : view_pixels) v.resize(size_t(n) * image_bytes);
      data::Image mosaic(shape.width, shape.height, 3);
      for (int64_t i = 0; i < n; ++i) {
        const std::span<const uint8_t> sample = batch->sample(int(i));
        std::copy(sample.begin(), sample.end(), mosaic.pixels.begin());
        const std::vector<data::Image> mosaic_views = data::tta_views(mosaic, mode);
        for (int v = 0; v < views; ++v)
          std::copy(mosaic_views[size_t(v)].pixels.begin(), mosaic_views[size_t(v)].pixels.end(),
                    view_pixels[size_t(v)].begin() + std::ptrdiff_t(size_t(i) * image_bytes));
      }
    }
    note_pinning(*val_loader_);
    std::vector<float> values;
    for (int view = 0; view < views; ++view) {
      // uint8 to the device, normalised there: a quarter of the bytes of the f32 input.
      Tensor pixels;
      if (views > 1) {
        Tensor host = Tensor::empty({n, shape.height, shape.width, 3}, DType::u8, Device::cpu(), "validation view");
        std::copy(view_pixels[size_t(view)].begin(), view_pixels[size_t(view)].end(), host.data_as<uint8_t>());
        pixels = device_.is_cpu() ? host : host.to(device_, compute_stream_);
      } else {
        const data::DeviceBatch uploaded = batch->upload_async(device_, copy_stream_);
        uploaded.wait(compute_stream_);
        pixels = uploaded.pixels;
      }
      const Tensor input = model_input(pixels);
      nn::Context ctx(false, 0, 0, compute_stream_);
      const std::vector<float> logits = model_->forward(ctx, input).to(Device::cpu()).to_floats();
      if (values.empty()) values.assign(logits.size(), 0.0f);
      for (size_t i = 0; i < logits.size(); ++i) values[i] += logits[i] / float(views);
    }
    for (int64_t i = 0; i < n; ++i) {
      const SlideRow& row = val_rows_.at(size_t(batch->items()[size_t(i)]));
      const std::span<const float> slide(values.data() + i * outputs, size_t(outputs));
      const double score = grading::head_score(head_, slide);
      const int prediction = grading::head_grade(head_, slide);
      loss_sum += slide_loss(head_, slide, row.row.isup_grade);
      ++count;
      result.kappa.add(row.row.isup_grade, prediction, std::string(data::provider_name(row.row.provider)));
      result.oof_rows.push_back(row.row.image_id + "," + std::string(data::provider_name(row.row.provider)) + "," +
                                std::to_string(row.row.isup_grade) + "," + std::to_string(fold_) + "," + number(score) +
                                "," + std::to_string(prediction));
    }
  }
  SG_CHECK(count > 0, "fold ", fold_, ": every validation slide was skipped");
  result.loss = loss_sum / double(count);
  model_->set_training(true);
  return result;
}

void FoldRun::write_best(int epoch, const ValidationResult& validation, const std::optional<double>& qwk) {
  WeightAttributes attributes;
  attributes.arch_config = nn::config_text(model_->config());
  grading::ModelCard card;
  card.head = head_;
  card.tiles = train_recipe_.tiles;
  const data::SampleShape shape = train_recipe_.sample_shape();
  card.mosaic_rows = shape.height / train_recipe_.tiles.size;
  card.mosaic_cols = shape.width / train_recipe_.tiles.size;
  card.invert = normalization_.invert;
  card.fold = fold_;
  card.epoch = epoch;
  card.validation_qwk = qwk.value_or(std::numeric_limits<double>::quiet_NaN());
  grading::write_model_card(card, attributes);
  save_weights((dir_ / "best.h5").string(), model_tensors(*model_), attributes);

  write_confusion_csv((dir_ / "confusion.csv").string(), validation.kappa.overall);
  std::string oof = "image_id,data_provider,isup_grade,fold,score,prediction\n";
  for (const std::string& row : validation.oof_rows) oof += row + "\n";
  write_file_atomically(dir_ / "oof_predictions.csv", oof);
}

void FoldRun::write_checkpoint(int epochs_done) {
  TrainingCheckpoint checkpoint;
  checkpoint.optimizer = optimizer_state(*optimizer_);
  checkpoint.scheduler.kind = lr_schedule_name(scheduler_->config().kind);
  checkpoint.scheduler.scalars["step"] = double(scheduler_->step());
  checkpoint.scheduler.scalars["base_lr"] = scheduler_->config().base_lr;
  checkpoint.scheduler.scalars["warmup_steps"] = double(scheduler_->config().warmup_steps);
  checkpoint.scheduler.scalars["total_steps"] = double(scheduler_->config().total_steps);
  train_step_->save_progress(checkpoint.progress);
  checkpoint.progress.epoch = epochs_done;
  checkpoint.progress.data_position = 0;
  checkpoint.progress.counters["best_epoch"] = best_epoch_;
  checkpoint.progress.counters["fold"] = fold_;
  checkpoint.progress.values["best_qwk"] = best_qwk_.value_or(std::numeric_limits<double>::quiet_NaN());
  checkpoint.progress.counters["best_qwk_defined"] = best_qwk_.has_value() ? 1 : 0;
  WeightAttributes attributes;
  attributes.arch_config = nn::config_text(model_->config());
  save_checkpoint((dir_ / "last.h5").string(), model_tensors(*model_), attributes, checkpoint);
}

FoldResult FoldRun::run() {
  fs::create_directories(dir_);
  check_config();
  prepare_data();
  open_device();
  build_loaders();
  int start_epoch = 0;
  {
    AllocationScope setup_scope("building the model",
                                "the network's weights alone do not fit: raise --memory-limit, or train a smaller "
                                "network (--arch, --width, --depth)");
    build_model();
    build_optimizer_and_schedule();
    start_epoch = resume_or_start_fresh(setup_scope);
  }
  write_run_config(dir_, config_);
  const data::SampleShape shape = train_recipe_.sample_shape();
  say("fold " + std::to_string(fold_) + ": efficientnet-" + model_config_.arch + " (" +
      std::to_string(model_->parameters().size()) + " parameter tensors) on " + device_.str() + ", " +
      std::to_string(shape.width) + "x" + std::to_string(shape.height) + " mosaics, " +
      std::to_string(steps_per_epoch_) + " steps per epoch, epochs " + std::to_string(start_epoch) + ".." +
      std::to_string(config_.epochs - 1));

  std::vector<EpochParts> times;
  for (int epoch = start_epoch; epoch < config_.epochs; ++epoch) times.push_back(run_epoch(epoch));
  return result(times);
}

void FoldRun::check_config() {
  head_ = grading::parse_head_kind(config_.head);
  precision_ = nn::parse_precision(config_.precision);
  SG_CHECK(config_.batch >= 1, "batch ", config_.batch, ": expected at least 1");
  SG_CHECK(config_.accumulate >= 1, "accumulate ", config_.accumulate, ": expected at least 1");
  SG_CHECK(config_.epochs >= 1, "epochs ", config_.epochs, ": expected at least 1");
  SG_CHECK(config_.train_fraction > 0 && config_.train_fraction <= 1, "train_fraction ", config_.train_fraction,
           ": expected in (0, 1]");
}

void FoldRun::open_device() {
  device_ = parse_device(config_.device);
  copy_stream_ = Stream::create(device_);  // CUDA: a stream of its own; the CPU copies in place
  // --memory-limit caps the allocator of the training device (every tensor of the run there, the
  // cuBLAS workspace on CUDA); the loader's host batch buffers are not counted (core/allocator.h).
  if (!config_.memory_limit.empty()) memory_limit_.emplace(device_, parse_bytes(config_.memory_limit));
  Allocator& device_memory = allocator_for(device_);
  device_memory.reset_peak();
  say(memory_limit_text(device_, device_memory.stats().limit));
}

void FoldRun::build_loaders() {
  auto slides = std::make_shared<data::SlideCache>(16);
  std::shared_ptr<data::TileCache> cache;
  if (config_.tile_cache) {
    const fs::path cache_dir =
        config_.cache_dir.empty() ? fs::path(config_.data) / ".slidegrade_tile_cache" : fs::path(config_.cache_dir);
    std::error_code error;
    fs::create_directories(cache_dir, error);
    SG_CHECK(!error, cache_dir.string(), ": cannot create the tile cache folder: ", error.message());
    cache = std::make_shared<data::TileCache>(cache_dir);
  }
  train_recipe_.tiles = data::TileSpec{config_.tiles, config_.tile_size, config_.level, config_.half_offset};
  train_recipe_.rows = config_.mosaic_rows;
  train_recipe_.cols = config_.mosaic_cols;
  train_recipe_.shuffle_tiles = config_.shuffle_tiles;
  train_recipe_.augment = augment_config(config_.augment);
  val_recipe_ = train_recipe_;
  val_recipe_.shuffle_tiles = false;
  val_recipe_.augment = data::AugmentConfig::none();
  auto train_mosaics = std::make_shared<data::SlideMosaics>(slide_items(train_rows_), train_recipe_, slides, cache);
  auto val_mosaics = std::make_shared<data::SlideMosaics>(slide_items(val_rows_), val_recipe_, slides, cache);

  data::AsyncLoaderConfig loader;
  loader.batch_size = config_.batch;
  loader.sample_shape = train_recipe_.sample_shape();
  loader.workers = std::max(0, config_.loader_threads);
  loader.queue_depth = std::max(1, config_.queue_depth);
  loader.shuffle = true;
  loader.drop_last = int64_t(train_rows_.size()) >= config_.batch;
  loader.seed = config_.seed;
  loader.device = device_;
  loader.item_name = [rows = train_rows_](int64_t i) { return rows.at(size_t(i)).path; };
  train_loader_ =
      std::make_unique<data::AsyncLoader>(loader, int64_t(train_rows_.size()), train_mosaics->sample_function());
  data::AsyncLoaderConfig val_loader = loader;
  val_loader.shuffle = false;
  val_loader.drop_last = false;
  val_loader.item_name = [rows = val_rows_](int64_t i) { return rows.at(size_t(i)).path; };
  val_loader_ =
      std::make_unique<data::AsyncLoader>(val_loader, int64_t(val_rows_.size()), val_mosaics->sample_function());
}

void FoldRun::build_model() {
  model_config_ = model_config(config_, head_);
  model_ = std::make_unique<nn::EfficientNet>(model_config_, device_);
  if (!config_.pretrained.empty()) {
    const AllocationScope scope("loading the pretrained weights " + config_.pretrained);
    say(format_pretrained_report(load_pretrained(*model_, config_.pretrained)));
  }
  model_->set_precision(precision_);
  const data::SampleShape shape = train_recipe_.sample_shape();
  const nn::CheckpointPolicy policy = checkpoint_policy(config_, model_config_, precision_, shape.height, shape.width,
                                                        device_, [this](const std::string& s) { say(s); });
  model_->set_checkpointing(policy);
  step_advice_ = training_memory_advice(policy);
  model_->set_training(true);
  normalization_.invert = true;
  normalization_.mean = model_config_.mean;
  normalization_.std = model_config_.std;
}

void FoldRun::build_optimizer_and_schedule() {
  OptimizerConfig optimizer_config;
  optimizer_config.name = config_.optimizer;
  optimizer_config.lr = float(config_.lr);
  optimizer_config.weight_decay = float(config_.weight_decay);
  optimizer_config.momentum = float(config_.momentum);
  optimizer_ = make_optimizer(optimizer_config, model_->parameters());

  const int64_t batches_per_epoch = train_loader_->batches_per_epoch();
  steps_per_epoch_ = batches_per_epoch / config_.accumulate;
  SG_CHECK(steps_per_epoch_ >= 1, "fold ", fold_, ": ", train_rows_.size(), " training slides make ", batches_per_epoch,
           " batches of ", config_.batch, ", fewer than one optimizer step of accumulate ", config_.accumulate);
  micro_batches_per_epoch_ = steps_per_epoch_ * config_.accumulate;
  LrScheduleConfig schedule;
  schedule.kind = parse_lr_schedule_kind(config_.schedule);
  schedule.base_lr = config_.lr;
  schedule.total_steps = steps_per_epoch_ * config_.epochs;
  schedule.warmup_steps =
      std::min<int64_t>(std::llround(config_.warmup_epochs * double(steps_per_epoch_)), schedule.total_steps - 1);
  schedule.warmup_steps = std::max<int64_t>(0, schedule.warmup_steps);
  schedule.min_lr = config_.min_lr;
  schedule.restart_period = std::max<int64_t>(1, steps_per_epoch_);
  schedule.step_size = std::max<int64_t>(1, steps_per_epoch_);
  scheduler_ = std::make_unique<LrScheduler>(schedule);

  TrainStepOptions step_options;
  step_options.loss = head_loss(head_);
  step_options.label_smoothing = head_ == grading::HeadKind::softmax ? float(config_.label_smoothing) : 0.0f;
  step_options.micro_batches = config_.accumulate;
  step_options.max_grad_norm = float(config_.max_grad_norm);
  step_options.seed = config_.seed;
  train_step_ = std::make_unique<TrainStep>(*model_, *optimizer_, step_options);
}

int FoldRun::resume_or_start_fresh(AllocationScope& setup_scope) {
  const fs::path last = dir_ / "last.h5";
  if (options_.resume && fs::is_regular_file(last)) {
    setup_scope.relabel("resuming from " + last.string());
    restore_checkpoint(last);
    return int(metrics_rows_.size());
  }
  if (options_.resume)
    say(dir_.string() + ": no last.h5 yet; starting fold " + std::to_string(fold_) + " from the beginning");
  remove_earlier_run_files();
  return 0;
}

void FoldRun::restore_checkpoint(const fs::path& last) {
  const TrainingCheckpoint checkpoint = load_checkpoint(last.string(), model_tensors(*model_));
  nn::mark_parameters_changed(*model_);
  model_->drop_folded_weights();
  restore_optimizer(*optimizer_, checkpoint.optimizer, last.string());
  train_step_->restore_progress(checkpoint.progress);
  const auto step = checkpoint.scheduler.scalars.find("step");
  SG_CHECK(step != checkpoint.scheduler.scalars.end(), last.string(), ": no scheduler step");
  scheduler_->set_step(int64_t(step->second));
  const int start_epoch = int(checkpoint.progress.epoch);
  const auto counter = [&](const char* name) {
    const auto it = checkpoint.progress.counters.find(name);
    SG_CHECK(it != checkpoint.progress.counters.end(), last.string(), ": no training counter ", name);
    return it->second;
  };
  SG_CHECK(counter("fold") == fold_, last.string(), ": a checkpoint of fold ", counter("fold"), ", not fold ", fold_);
  best_epoch_ = int(counter("best_epoch"));
  if (counter("best_qwk_defined")) best_qwk_ = checkpoint.progress.values.at("best_qwk");
  // The rows of the epochs the checkpoint covers (a row written after it is redone).
  std::vector<std::string> lines = read_lines(dir_ / "metrics.csv");
  for (size_t i = 1; i < lines.size(); ++i)
    if (std::stoi(lines[i].substr(0, lines[i].find(','))) < start_epoch) metrics_rows_.push_back(lines[i]);
  SG_CHECK(int(metrics_rows_.size()) == start_epoch, (dir_ / "metrics.csv").string(), ": ", metrics_rows_.size(),
           " rows for the ", start_epoch, " epochs of ", last.string());
  say("resuming fold " + std::to_string(fold_) + " from " + last.string() + " after epoch " +
      std::to_string(start_epoch) + " (step " + std::to_string(train_step_->step_index()) + ")");
}

void FoldRun::remove_earlier_run_files() {
  // A fresh start: earlier files of this folder would describe another run.
  std::string removed;
  for (const char* name : {"metrics.csv", "best.h5", "last.h5", "confusion.csv", "oof_predictions.csv", "curves.svg",
                           "curves.png", "confusion.svg", "confusion.png"}) {
    std::error_code ignored;
    if (fs::remove(dir_ / name, ignored)) removed += std::string(removed.empty() ? "" : ", ") + name;
  }
  if (!removed.empty()) say(dir_.string() + ": a fresh start replaces the earlier run's " + removed);
}

Tensor FoldRun::training_targets(const data::Batch& batch) const {
  const int64_t n = batch.size();
  const std::span<const int32_t> labels = batch.labels();
  Tensor targets;
  if (head_ == grading::HeadKind::softmax) {
    std::vector<float> classes(static_cast<size_t>(n), 0.0f);
    for (int64_t i = 0; i < n; ++i) classes[size_t(i)] = float(labels[size_t(i)]);
    targets = Tensor::from_floats(classes, {n}, DType::i32);
  } else {
    const int outputs = grading::head_outputs(head_);
    std::vector<float> values(size_t(n * outputs));
    for (int64_t i = 0; i < n; ++i)
      grading::head_targets(head_, labels[size_t(i)], std::span<float>(values.data() + i * outputs, size_t(outputs)));
    targets = Tensor::from_floats(values, {n, outputs});
  }
  return device_.is_cpu() ? targets : targets.to(device_, compute_stream_);
}

EpochParts FoldRun::run_epoch(int epoch) {
  EpochParts t;
  const auto epoch_start = Clock::now();
  const TrainingPass pass = train_one_epoch(epoch, epoch_start, t);

  const auto validation_start = Clock::now();
  const ValidationResult validation = validate(epoch);
  t.validation = seconds_since(validation_start);
  const std::optional<double> qwk = grading::quadratic_weighted_kappa(validation.kappa.overall);
  const bool best = best_epoch_ < 0 || (qwk && (!best_qwk_ || *qwk > *best_qwk_));
  if (best) {
    best_qwk_ = qwk;
    best_epoch_ = epoch;
  }
  // Everything up to here of the epoch is in the row; the files' writing time is "other".
  t.epoch = seconds_since(epoch_start);
  metrics_rows_.push_back(metrics_row(epoch, pass, validation, qwk, t));
  if (pass.skipped_steps > 0)
    say("epoch " + std::to_string(epoch) + ": " + std::to_string(pass.skipped_steps) + " of " +
        std::to_string(pass.loss_count) + " steps skipped (f16 gradients overflowed; each halved the loss scale, now " +
        number(double(train_step_->loss_scale())) + ")");
  std::string metrics = std::string(kMetricsHeader) + "\n";
  for (const std::string& row : metrics_rows_) metrics += row + "\n";
  // Order matters for resume: metrics.csv, then best.h5, then last.h5 (a resume redoes any
  // epoch whose last.h5 was not written, and keeps only the rows last.h5 covers).
  write_file_atomically(dir_ / "metrics.csv", metrics);
  {
    const AllocationScope scope(detail::concat("writing the checkpoints of epoch ", epoch + 1));
    if (best) write_best(epoch, validation, qwk);
    write_checkpoint(epoch + 1);
  }
  write_run_plots(dir_.string());  // curves and confusion, .svg and .png
  t.epoch = seconds_since(epoch_start);
  report_epoch(epoch, pass, validation, qwk, best, t.epoch);
  return t;
}

FoldRun::TrainingPass FoldRun::train_one_epoch(int epoch, Clock::time_point epoch_start, EpochParts& t) {
  model_->set_training(true);
  train_step_->reset_times();
  const data::LoaderStats stats_before = train_loader_->stats();
  train_loader_->start_epoch(epoch);
  TrainingPass pass;
  pass.lr = scheduler_->lr();
  // One batch ahead: batch k+1 is taken from the loader and its copy queued on the copy stream
  // before step k's work is queued, so on a GPU the copy runs while step k computes (the steps
  // synchronise at their ends to read the loss). The loader is asked for exactly the batches
  // it was asked for before, in the same order.
  struct PendingBatch {
    data::Batch host;          // the labels are read from it
    data::DeviceBatch device;  // the uint8 pixels, on their way to the device
  };
  int64_t fetched = 0;
  const auto fetch = [&]() -> std::optional<PendingBatch> {
    std::optional<data::Batch> batch = train_loader_->next();
    if (!batch) return std::nullopt;
    note_pinning(*train_loader_);
    const AllocationScope scope(detail::concat("copying batch ", ++fetched, "/", micro_batches_per_epoch_, " of epoch ",
                                               epoch + 1, " to the device"),
                                step_advice_);
    const auto copy_start = Clock::now();
    data::DeviceBatch device = batch->upload_async(device_, copy_stream_);
    t.copy += seconds_since(copy_start);
    return PendingBatch{std::move(*batch), std::move(device)};
  };
  std::optional<PendingBatch> pending;
  if (pass.micro_batches < micro_batches_per_epoch_) pending = fetch();
  while (pending) {
    const PendingBatch current = std::move(*pending);
    pending.reset();
    if (pass.micro_batches + 1 < micro_batches_per_epoch_) pending = fetch();
    // Named in an out-of-memory message (1-based, as the progress lines count).
    const AllocationScope step_scope(detail::concat("training step ", train_step_->step_index() + 1, " (epoch ",
                                                    epoch + 1, " of ", config_.epochs, ", batch ",
                                                    pass.micro_batches + 1, "/", micro_batches_per_epoch_, ")"),
                                     step_advice_);
    const auto copy_start = Clock::now();
    const Tensor targets = training_targets(current.host);
    current.device.wait(compute_stream_);  // the pixels' copy, before the normalisation reads them
    const Batch device_batch{model_input(current.device.pixels), targets};
    t.copy += seconds_since(copy_start);

    scheduler_->set_step(train_step_->step_index());
    scheduler_->apply(*optimizer_);
    pass.lr = scheduler_->lr();
    const StepResult step = train_step_->micro_batch(device_batch, compute_stream_);
    t.images += current.host.size();
    ++pass.micro_batches;
    if (step.completed) {  // the step's loss: the mean over its micro-batches
      pass.loss_sum += step.loss;
      ++pass.loss_count;
      if (step.skipped) ++pass.skipped_steps;
    }
    report_step(epoch, pass, step.loss, epoch_start, t);
  }
  SG_CHECK(pass.loss_count > 0, "fold ", fold_, " epoch ", epoch, ": no training step (every training slide skipped?)");
  SG_CHECK(train_step_->accumulation().position() == 0, "fold ", fold_, " epoch ", epoch,
           ": the epoch ended inside an accumulated step (skipped slides left ", pass.micro_batches, " of ",
           micro_batches_per_epoch_, " micro-batches); use accumulate 1 or fix the slides");
  scheduler_->set_step(train_step_->step_index());
  t.training = seconds_since(epoch_start);
  t.load = train_loader_->stats().wait_seconds - stats_before.wait_seconds;
  t.forward = train_step_->times().forward;
  t.backward = train_step_->times().backward;
  t.optimizer = train_step_->times().optimizer;
  return pass;
}

void FoldRun::report_step(int epoch, const TrainingPass& pass, float loss, Clock::time_point epoch_start,
                          const EpochParts& t) const {
  if (!events_.step) return;
  StepEvent e;
  e.epoch = epoch;
  e.epochs = config_.epochs;
  e.batch = pass.micro_batches;
  e.batches = micro_batches_per_epoch_;
  e.images = t.images;
  e.seconds = seconds_since(epoch_start);
  e.loss = loss;
  e.lr = float(pass.lr);
  const MemoryStats memory = allocator_for(device_).stats();
  e.device_bytes_in_use = int64_t(memory.in_use);
  e.device_bytes_peak = int64_t(memory.peak_in_use);
  events_.step(e);
}

std::string FoldRun::metrics_row(int epoch, const TrainingPass& pass, const ValidationResult& validation,
                                 const std::optional<double>& qwk, const EpochParts& t) const {
  const auto provider_qwk = [&](const char* provider) -> std::optional<double> {
    const auto it = validation.kappa.by_group.find(provider);
    return it == validation.kappa.by_group.end() ? std::nullopt : grading::quadratic_weighted_kappa(it->second);
  };
  const double train_loss = pass.loss_sum / double(pass.loss_count);
  return std::to_string(epoch) + "," + std::to_string(train_step_->step_index()) + "," + number(pass.lr) + "," +
         number(train_loss) + "," + number(validation.loss) + "," + number(qwk) + "," +
         number(provider_qwk("karolinska")) + "," + number(provider_qwk("radboud")) + "," +
         number(validation.kappa.overall.accuracy()) + "," + seconds_text(t.epoch) + "," +
         seconds_text(t.training > 0 ? double(t.images) / t.training : 0.0) + "," + seconds_text(t.load) + "," +
         seconds_text(t.copy) + "," + seconds_text(t.forward) + "," + seconds_text(t.backward) + "," +
         seconds_text(t.optimizer) + "," + seconds_text(t.validation) + "," +
         seconds_text(t.training > 0 ? t.load / t.training : 0.0) + "," + std::to_string(pass.skipped_steps) + "," +
         number(double(train_step_->loss_scale()));
}

void FoldRun::report_epoch(int epoch, const TrainingPass& pass, const ValidationResult& validation,
                           const std::optional<double>& qwk, bool best, double seconds) const {
  if (!events_.epoch) return;
  EpochEvent e;
  e.epoch = epoch;
  e.epochs = config_.epochs;
  e.train_loss = pass.loss_sum / double(pass.loss_count);
  e.val_loss = validation.loss;
  e.val_qwk = qwk;
  for (const auto& [provider, matrix] : validation.kappa.by_group)
    e.val_qwk_by_provider[provider] = grading::quadratic_weighted_kappa(matrix);
  e.val_accuracy = validation.kappa.overall.accuracy();
  e.confusion = validation.kappa.overall;
  e.best = best;
  e.seconds = seconds;
  events_.epoch(e);
}

FoldResult FoldRun::result(const std::vector<EpochParts>& times) {
  std::set<std::string> seen(skipped_.begin(), skipped_.end());
  for (const data::AsyncLoader* source : {train_loader_.get(), val_loader_.get()})
    for (const data::SkippedItem& item : source->skipped_items()) {
      const std::string line = item.name + ": " + item.message;
      if (seen.insert(line).second) skipped_.push_back(line);
    }
  FoldResult fold_result;
  fold_result.fold = fold_;
  fold_result.run_dir = dir_.string();
  fold_result.best_weights = (dir_ / "best.h5").string();
  fold_result.skipped_slides = skipped_;
  fold_result.best_qwk = best_qwk_;
  fold_result.best_epoch = best_epoch_;
  fold_result.time_report = time_report(times, device_);
  say(memory_peak_text(device_, allocator_for(device_).stats()));
  return fold_result;
}

}  // namespace

std::vector<FoldResult> run_training(const RunConfig& config, const TrainOptions& options,
                                     const TrainerEvents& events) {
  validate_run_config(config);
  const fs::path root = config.out;
  if (options.resume) check_resume_config(root, config);
  const fs::path data_dir = config.data;
  SG_CHECK(fs::is_directory(data_dir), config.data, ": no such data folder");
  SG_CHECK(fs::is_regular_file(data_dir / "train.csv"), config.data, ": no train.csv in the data folder (expected ",
           (data_dir / "train.csv").string(), ")");
  std::error_code error;
  fs::create_directories(root, error);
  SG_CHECK(!error, root.string(), ": cannot create the run folder: ", error.message());
  if (config.all_folds) write_run_config(root, config);

  std::vector<FoldResult> results;
  const fs::path folds_path = root / "folds.csv";
  if (!config.all_folds) {
    FoldRun run(config, config.fold, root, folds_path, options, events);
    results.push_back(run.run());
    return results;
  }
  for (int fold = 0; fold < config.folds; ++fold) {
    RunConfig fold_config = config;
    fold_config.fold = fold;
    fold_config.all_folds = false;
    fold_config.out = (root / ("fold" + std::to_string(fold))).string();
    if (events.message) events.message("---- fold " + std::to_string(fold) + " of " + std::to_string(config.folds));
    TrainOptions fold_options = options;
    FoldRun run(fold_config, fold, fold_config.out, folds_path, fold_options, events);
    results.push_back(run.run());
  }
  return results;
}

}  // namespace sg::train
