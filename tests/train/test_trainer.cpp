// The trainer end to end on tiny synthetic slides and a tiny network (train/trainer.h): the run
// folder's files and columns, best.h5 with its model card, resume after an epoch giving the same
// weights and metrics as an uninterrupted run, and the bad inputs (no train.csv, an empty fold, a
// run folder of another config, a full disk while writing the checkpoint).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/synthetic_slides.h"
#include "grading/model_card.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/weights/temp_dir.h"
#include "train/trainer.h"
#include "weights/checkpoint_file.h"
#include "weights/weight_file.h"

namespace sg::train {
namespace {

namespace fs = std::filesystem;

const char* const kMetricsHeader =
    "epoch,step,lr,train_loss,val_loss,val_qwk,val_qwk_karolinska,val_qwk_radboud,val_accuracy,epoch_seconds,"
    "images_per_second,load_seconds,copy_seconds,forward_seconds,backward_seconds,optimizer_seconds,"
    "validation_seconds,device_wait_fraction,skipped_steps,loss_scale";
constexpr int kSlides = 18;

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

// metrics.csv without its timing columns (the first 9 are what the run computed).
std::vector<std::string> computed_metrics(const fs::path& path) {
  std::vector<std::string> out;
  for (const std::string& line : lines_of(path)) {
    const std::vector<std::string> f = split(line);
    std::string row;
    for (size_t i = 0; i < 9 && i < f.size(); ++i) row += f[i] + ",";
    out.push_back(row);
  }
  return out;
}

// Every tensor of a weight file (model and, for checkpoints, what load_checkpoint returns) by name.
std::map<std::string, std::vector<float>> model_values(const std::string& path) {
  const WeightFileInfo info = read_weight_file_info(path);
  nn::EfficientNet model(nn::parse_config_text(info.attributes.arch_config, path));
  const std::vector<NamedTensor> tensors = named_tensors(model.parameters(), model.buffers());
  load_weights(path, tensors);
  std::map<std::string, std::vector<float>> out;
  for (const NamedTensor& t : tensors) out[t.name] = t.tensor.to_floats();
  return out;
}

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    data::SyntheticDatasetOptions options;
    options.train_slides = kSlides;
    options.test_slides = 0;
    options.width = 1024;
    options.height = 512;
    options.seed = 3;
    options.threads = 2;
    data::write_synthetic_dataset(data_dir().string(), options);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path data_dir() { return dir_->path() / "panda"; }

  // 18 slides of 1024x512, 16 tiles of 32 px at level 1 (128x128 mosaics), a B0 at width 0.25
  // and depth 0.34, batch 4, 3 folds: 12 training slides (3 steps per epoch), 6 validation.
  RunConfig tiny(const std::string& run, int epochs = 3) const {
    RunConfig c;
    c.data = data_dir().string();
    c.out = (run_root_.path() / run).string();
    c.folds = 3;
    c.fold = 0;
    c.tiles = 16;
    c.tile_size = 32;
    c.level = 1;
    c.arch = "b0";
    c.width = 0.25;
    c.depth = 0.34;
    c.batch = 4;
    c.epochs = epochs;
    c.warmup_epochs = epochs > 1 ? 1.0 : 0.0;  // < epochs
    c.lr = 1e-3;
    c.device = "cpu";
    c.loader_threads = 2;
    c.seed = 11;
    c.cache_dir = (dir_->path() / "tile_cache").string();
    return c;
  }

  static testing::TempDir* dir_;
  testing::TempDir run_root_;
};
testing::TempDir* TrainerTest::dir_ = nullptr;

struct StopAfterEpoch {};

TEST_F(TrainerTest, WritesEveryFileOfTheRunFolder) {
  const RunConfig config = tiny("run");
  std::vector<EpochEvent> epochs;
  int64_t steps = 0;
  TrainerEvents events;
  events.epoch = [&](const EpochEvent& e) { epochs.push_back(e); };
  events.step = [&](const StepEvent& e) {
    ++steps;
    EXPECT_EQ(e.batches, 3);
    EXPECT_TRUE(std::isfinite(e.loss));
  };
  const std::vector<FoldResult> results = run_training(config, {}, events);
  ASSERT_EQ(results.size(), 1u);
  const FoldResult& r = results[0];
  const fs::path run = config.out;
  for (const char* name :
       {"config.toml", "folds.csv", "metrics.csv", "confusion.csv", "oof_predictions.csv", "best.h5", "last.h5"})
    EXPECT_TRUE(fs::is_regular_file(run / name)) << name;
  EXPECT_EQ(steps, 9);
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_TRUE(epochs[0].best);

  const std::vector<std::string> metrics = lines_of(run / "metrics.csv");
  ASSERT_EQ(metrics.size(), 4u);
  EXPECT_EQ(metrics[0], kMetricsHeader);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<std::string> f = split(metrics[size_t(epoch + 1)]);
    ASSERT_EQ(f.size(), 20u) << metrics[size_t(epoch + 1)];
    EXPECT_EQ(f[0], std::to_string(epoch));
    EXPECT_EQ(f[1], std::to_string(3 * (epoch + 1))) << "optimizer steps so far";
    EXPECT_NEAR(std::stod(f[3]), epochs[size_t(epoch)].train_loss, 1e-6);
    EXPECT_GT(std::stod(f[9]), 0.0) << "epoch_seconds";
    EXPECT_EQ(f[18], "0") << "skipped_steps";
    EXPECT_EQ(f[19], "1") << "loss_scale (f32: 1)";
  }
  // Cosine after a one-epoch warm-up: the rate of the last step of epoch 0 (step 2) is 0.7 lr.
  EXPECT_NEAR(std::stod(split(metrics[1])[2]), 0.7e-3, 1e-9);

  const std::vector<std::string> oof = lines_of(run / "oof_predictions.csv");
  EXPECT_EQ(oof[0], "image_id,data_provider,isup_grade,fold,score,prediction");
  EXPECT_EQ(oof.size(), 1u + kSlides / 3);
  const std::vector<std::string> confusion = lines_of(run / "confusion.csv");
  ASSERT_EQ(confusion.size(), 7u);
  int64_t total = 0;
  for (size_t i = 1; i < 7; ++i)
    for (size_t j = 1; j < 7; ++j) total += std::stoll(split(confusion[i])[j]);
  EXPECT_EQ(total, kSlides / 3);

  const WeightFileInfo info = read_weight_file_info((run / "best.h5").string());
  EXPECT_FALSE(info.is_checkpoint);
  const grading::ModelCard card = grading::read_model_card(info.attributes, (run / "best.h5").string());
  EXPECT_EQ(card.head, grading::HeadKind::binned);
  EXPECT_EQ(card.tiles, (data::TileSpec{16, 32, 1, false}));
  EXPECT_EQ(card.mosaic_rows, 4);
  EXPECT_EQ(card.mosaic_cols, 4);
  EXPECT_EQ(card.fold, 0);
  EXPECT_EQ(card.epoch, r.best_epoch);
  if (r.best_qwk) {
    EXPECT_DOUBLE_EQ(card.validation_qwk, *r.best_qwk);
  }
  EXPECT_EQ(model_values((run / "best.h5").string()).size(), info.tensors.size()) << "best.h5 loads";
  EXPECT_TRUE(read_weight_file_info((run / "last.h5").string()).is_checkpoint);
  EXPECT_NE(r.time_report.find("forward"), std::string::npos) << r.time_report;
  EXPECT_NE(r.time_report.find("waited for data"), std::string::npos) << r.time_report;
  std::cout << "[          ] " << r.time_report << "\n";
}

TEST_F(TrainerTest, AllFoldsShareOneSplitAndSkipMissingSlides) {
  // A copy of the dataset without one slide: it is reported and skipped, not fatal.
  const fs::path data = run_root_.path() / "panda_missing";
  fs::create_directories(data / "train_images");
  fs::copy_file(data_dir() / "train.csv", data / "train.csv");
  std::string missing;
  for (const auto& entry : fs::directory_iterator(data_dir() / "train_images")) {
    if (missing.empty()) {
      missing = entry.path().filename().string();
      continue;
    }
    fs::create_symlink(entry.path(), data / "train_images" / entry.path().filename());
  }
  RunConfig config = tiny("all", 1);
  config.data = data.string();
  config.all_folds = true;
  config.train_fraction = 0.5;
  std::vector<std::string> messages;
  TrainerEvents events;
  events.message = [&](const std::string& line) { messages.push_back(line); };
  const std::vector<FoldResult> results = run_training(config, {}, events);
  ASSERT_EQ(results.size(), 3u);
  const fs::path root = config.out;
  EXPECT_TRUE(fs::is_regular_file(root / "folds.csv"));
  EXPECT_TRUE(fs::is_regular_file(root / "config.toml"));
  EXPECT_EQ(lines_of(root / "folds.csv").size(), 1u + kSlides) << "the split covers the table, missing slides too";
  size_t validation_rows = 0;
  for (int fold = 0; fold < 3; ++fold) {
    const FoldResult& r = results[size_t(fold)];
    EXPECT_EQ(r.fold, fold);
    EXPECT_EQ(fs::path(r.run_dir), root / ("fold" + std::to_string(fold)));
    EXPECT_TRUE(fs::is_regular_file(fs::path(r.run_dir) / "best.h5"));
    EXPECT_FALSE(fs::exists(fs::path(r.run_dir) / "folds.csv")) << "one split, in the parent folder";
    validation_rows += lines_of(fs::path(r.run_dir) / "oof_predictions.csv").size() - 1;
    ASSERT_EQ(r.skipped_slides.size(), 1u);
    EXPECT_NE(r.skipped_slides[0].find(missing), std::string::npos) << r.skipped_slides[0];
  }
  EXPECT_EQ(validation_rows, size_t(kSlides - 1)) << "every present slide validated exactly once";
  // train_fraction 0.5 of 11 or 12 training slides, stratified (at least one per stratum).
  bool fraction_reported = false;
  for (const std::string& m : messages) fraction_reported |= m.find("train_fraction") != std::string::npos;
  EXPECT_TRUE(fraction_reported);
}

TEST_F(TrainerTest, TtaValidationChangesOnlyTheValidation) {
  const RunConfig plain = tiny("plain", 1);
  RunConfig tta = tiny("tta", 1);
  tta.tta_validation = true;
  run_training(plain);
  run_training(tta);
  const std::vector<std::string> a = split(lines_of(fs::path(plain.out) / "metrics.csv").at(1));
  const std::vector<std::string> b = split(lines_of(fs::path(tta.out) / "metrics.csv").at(1));
  EXPECT_EQ(a.at(3), b.at(3)) << "the same training";
  EXPECT_NE(a.at(4), b.at(4)) << "validation loss over 8 views differs from one view's";
}

TEST_F(TrainerTest, ResumeAfterAnEpochEqualsAnUninterruptedRun) {
  const RunConfig whole = tiny("whole");
  run_training(whole);

  const RunConfig parts = tiny("parts");
  TrainerEvents stop;
  stop.epoch = [](const EpochEvent& e) {
    if (e.epoch == 0) throw StopAfterEpoch{};
  };
  EXPECT_THROW(run_training(parts, {}, stop), StopAfterEpoch);
  ASSERT_EQ(lines_of(fs::path(parts.out) / "metrics.csv").size(), 2u);
  std::vector<std::string> messages;
  TrainerEvents say;
  say.message = [&](const std::string& line) { messages.push_back(line); };
  run_training(parts, {.resume = true}, say);
  bool resumed = false;
  for (const std::string& m : messages) resumed |= m.find("resuming fold 0") != std::string::npos;
  EXPECT_TRUE(resumed);

  for (const char* name : {"last.h5", "best.h5"}) {
    const auto a = model_values((fs::path(whole.out) / name).string());
    const auto b = model_values((fs::path(parts.out) / name).string());
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [tensor, values] : a) {
      const std::vector<float>& other = b.at(tensor);
      ASSERT_EQ(values.size(), other.size());
      EXPECT_EQ(std::memcmp(values.data(), other.data(), values.size() * sizeof(float)), 0)
          << name << ": " << tensor << " differs after resume";
    }
  }
  EXPECT_EQ(computed_metrics(fs::path(whole.out) / "metrics.csv"),
            computed_metrics(fs::path(parts.out) / "metrics.csv"));
  EXPECT_EQ(lines_of(fs::path(whole.out) / "oof_predictions.csv"),
            lines_of(fs::path(parts.out) / "oof_predictions.csv"));
}

std::string error_of(const RunConfig& config, const TrainOptions& options = {}) {
  try {
    run_training(config, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(TrainerTest, BadInputIsAClearError) {
  RunConfig no_csv = tiny("no_csv");
  no_csv.data = run_root_.path().string();
  EXPECT_NE(error_of(no_csv).find("no train.csv"), std::string::npos) << error_of(no_csv);

  RunConfig fold_out_of_range = tiny("fold_out_of_range");
  fold_out_of_range.fold = 3;
  EXPECT_NE(error_of(fold_out_of_range).find("fold 3: expected 0..2"), std::string::npos)
      << error_of(fold_out_of_range);

  RunConfig too_many_folds = tiny("too_many_folds");
  too_many_folds.folds = kSlides + 1;
  const std::string empty = error_of(too_many_folds);
  EXPECT_NE(empty.find("fold"), std::string::npos) << empty;
  EXPECT_EQ(empty.find("(no error)"), std::string::npos);

  RunConfig resume_missing = tiny("never_ran");
  EXPECT_NE(error_of(resume_missing, {.resume = true}).find("no config.toml"), std::string::npos);
}

TEST_F(TrainerTest, ResumeRefusesARunFolderOfAnotherConfig) {
  RunConfig first = tiny("other", 1);
  run_training(first);
  RunConfig other = first;
  other.lr = 5e-4;
  other.warmup_epochs = first.warmup_epochs;
  other.epochs = 2;  // epochs may change on resume; lr may not
  const std::string message = error_of(other, {.resume = true});
  EXPECT_NE(message.find("another config"), std::string::npos) << message;
  EXPECT_NE(message.find("lr"), std::string::npos) << message;
}

TEST_F(TrainerTest, AFullDiskWhileCheckpointingKeepsThePreviousCheckpoint) {
  RunConfig config = tiny("full_disk", 1);
  run_training(config);
  const fs::path last = fs::path(config.out) / "last.h5";
  const auto before = model_values(last.string());
  const uintmax_t best_size = fs::file_size(fs::path(config.out) / "best.h5");
  const uintmax_t last_size = fs::file_size(last);
  ASSERT_GT(last_size, best_size + 4096) << "the checkpoint holds the optimizer state too";

  // Room for metrics.csv and best.h5, not for the checkpoint.
  config.epochs = 2;
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = (best_size + last_size) / 2;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const std::string message = error_of(config, {.resume = true});
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find(last.string()), std::string::npos) << message;

  const WeightFileInfo info = read_weight_file_info(last.string());
  EXPECT_TRUE(info.is_checkpoint);
  EXPECT_TRUE(info.checksum.present) << "the previous checkpoint's checksum was verified";
  const auto after = model_values(last.string());
  EXPECT_EQ(before, after) << "the previous checkpoint is intact";
  nn::EfficientNet model(nn::parse_config_text(info.attributes.arch_config, last.string()));
  EXPECT_EQ(load_checkpoint(last.string(), named_tensors(model.parameters(), model.buffers())).progress.epoch, 1);
}

// For tests/train/test_train_cli.sh (ctest train_cli): compares two run folders' last.h5 tensors
// bit for bit and their metrics.csv (without the timing columns). Skipped unless both are named
// by SLIDEGRADE_COMPARE_RUN_A / SLIDEGRADE_COMPARE_RUN_B.
TEST(TrainerRunFolders, SameWeightsAndMetrics) {
  const char* a = std::getenv("SLIDEGRADE_COMPARE_RUN_A");
  const char* b = std::getenv("SLIDEGRADE_COMPARE_RUN_B");
  if (a == nullptr || b == nullptr) GTEST_SKIP() << "run by tests/train/test_train_cli.sh";
  for (const char* name : {"last.h5", "best.h5"}) {
    const auto va = model_values((fs::path(a) / name).string());
    const auto vb = model_values((fs::path(b) / name).string());
    ASSERT_EQ(va.size(), vb.size()) << name;
    for (const auto& [tensor, values] : va) {
      const std::vector<float>& other = vb.at(tensor);
      ASSERT_EQ(values.size(), other.size());
      EXPECT_EQ(std::memcmp(values.data(), other.data(), values.size() * sizeof(float)), 0) << name << ": " << tensor;
    }
  }
  const auto metrics_a = computed_metrics(fs::path(a) / "metrics.csv");
  EXPECT_GT(metrics_a.size(), 1u);
  EXPECT_EQ(metrics_a, computed_metrics(fs::path(b) / "metrics.csv"));
}

// The synthetic grade is learnable: 36 slides of 2048x1024, 4 tiles of 64 px at level 1 (128x128
// mosaics: glands are visible at 64 px), a B0 at width 0.25 and depth 0.34, 8 epochs of 6 steps
// from scratch. Chance is a QWK of 0; a constant prediction scores 0. Measured here: 0.82 at
// epoch 8 (fold 0, 12 validation slides; 0.00 for epochs 1-4, then 0.34, 0.60, 0.73, 0.82). Asserting > 0.3 leaves room
// for another machine's rounding while still failing a trainer that does not learn.
TEST(TrainerLearns, ValidationQwkRisesWellAboveChance) {
  testing::TempDir dir;
  data::SyntheticDatasetOptions options;
  options.train_slides = 36;
  options.test_slides = 0;
  options.width = 2048;
  options.height = 1024;
  options.seed = 3;
  options.threads = 2;
  data::write_synthetic_dataset((dir.path() / "panda").string(), options);
  RunConfig c;
  c.data = (dir.path() / "panda").string();
  c.out = (dir.path() / "run").string();
  c.folds = 3;
  c.tiles = 4;
  c.tile_size = 64;
  c.level = 1;
  c.arch = "b0";
  c.width = 0.25;
  c.depth = 0.34;
  c.dropout = 0.1;
  c.drop_connect = 0.05;
  c.batch = 4;
  c.epochs = 8;
  c.lr = 2e-3;
  c.max_grad_norm = 5;
  c.augment = "light";
  c.device = "cpu";
  std::vector<std::optional<double>> qwk;
  TrainerEvents events;
  events.epoch = [&](const EpochEvent& e) { qwk.push_back(e.val_qwk); };
  const std::vector<FoldResult> results = run_training(c, {}, events);
  std::cout << "[          ] validation QWK per epoch:";
  for (const auto& q : qwk) std::cout << " " << grading::format_kappa(q);
  std::cout << "\n[          ] " << results.at(0).time_report << "\n";
  ASSERT_TRUE(results.at(0).best_qwk.has_value());
  EXPECT_GT(*results.at(0).best_qwk, 0.3);
  ASSERT_TRUE(qwk.back().has_value());
  EXPECT_GT(*qwk.back(), 0.3) << "the last epoch too, not one lucky epoch";
}

}  // namespace
}  // namespace sg::train
