// Training checkpoints: optimizer, scheduler and progress survive a round trip exactly; a
// checkpoint loads as weights; a weight file or a foreign model is refused with a clear message.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <limits>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/atomic_hdf5_write.h"
#include "weights/checkpoint_file.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

struct Fixture {
  std::vector<NamedTensor> model;
  TrainingCheckpoint checkpoint;
};

Fixture make_fixture(testing::Rng& rng) {
  Fixture f;
  Tensor conv = testing::random_tensor(rng, {4, 3, 3, 2});
  Tensor bias = testing::random_tensor(rng, {4});
  Tensor running_mean = testing::random_tensor(rng, {4});
  f.model = {{"stem.conv.weight", conv}, {"stem.bn.bias", bias}, {"stem.bn.running_mean", running_mean}};
  OptimizerState& opt = f.checkpoint.optimizer;
  opt.kind = "adamw";
  opt.scalars = {{"lr", 3e-4}, {"beta1", 0.9}, {"beta2", 0.999}, {"weight_decay", 0.05}, {"step", 1234}};
  opt.slots["stem.conv.weight"] = {{"exp_avg", testing::random_tensor(rng, {4, 3, 3, 2})},
                                   {"exp_avg_sq", testing::random_tensor(rng, {4, 3, 3, 2}, DType::f32, 0, 1)}};
  opt.slots["stem.bn.bias"] = {{"exp_avg", testing::random_tensor(rng, {4}, DType::bf16)}};
  f.checkpoint.scheduler = {"cosine", {{"base_lr", 1e-3}, {"warmup_steps", 500}, {"last_step", 1233}}};
  TrainingProgress& p = f.checkpoint.progress;
  p.step = 1234;
  p.epoch = 7;
  p.data_position = 4096;
  p.loss_scale = 32768.0;
  p.rng_seed = std::numeric_limits<uint64_t>::max() - 5;  // needs all 64 bits
  p.rng_offset = (uint64_t(1) << 40) + 17;
  p.counters = {{"loss_scale_good_steps", 1500}};
  p.values = {{"best_val_loss", 0.4321}};
  p.tensors = {{"sample_order", Tensor::from_floats({3, 0, 2, 1}, {4}, DType::i32)}};
  return f;
}

TEST(CheckpointFile, RoundTripRestoresModelOptimizerSchedulerAndProgress) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  const std::string path = dir.file("step-1234.h5");
  const Fixture saved = make_fixture(rng);
  save_checkpoint(path, saved.model, {"arch=b0", {}}, saved.checkpoint);
  EXPECT_TRUE(temporaries_of(path).empty());

  std::vector<NamedTensor> model;
  for (const NamedTensor& t : saved.model) model.push_back({t.name, Tensor::zeros(t.tensor.shape(), t.tensor.dtype())});
  LoadOptions options;
  options.expected_arch_config = "arch=b0";
  const TrainingCheckpoint loaded = load_checkpoint(path, model, options);
  for (size_t i = 0; i < model.size(); ++i) EXPECT_TRUE(same_bits(model[i].tensor, saved.model[i].tensor)) << model[i].name;

  EXPECT_EQ(loaded.optimizer.kind, "adamw");
  EXPECT_EQ(loaded.optimizer.scalars, saved.checkpoint.optimizer.scalars);
  ASSERT_EQ(loaded.optimizer.slots.size(), 2u);
  for (const auto& [parameter, slots] : saved.checkpoint.optimizer.slots) {
    ASSERT_EQ(loaded.optimizer.slots.count(parameter), 1u) << parameter;
    const auto& loaded_slots = loaded.optimizer.slots.at(parameter);
    ASSERT_EQ(loaded_slots.size(), slots.size()) << parameter;
    for (const auto& [slot, tensor] : slots)
      EXPECT_TRUE(same_bits(loaded_slots.at(slot), tensor)) << parameter << "/" << slot;
  }
  EXPECT_EQ(loaded.scheduler.kind, "cosine");
  EXPECT_EQ(loaded.scheduler.scalars, saved.checkpoint.scheduler.scalars);

  const TrainingProgress& p = loaded.progress;
  const TrainingProgress& q = saved.checkpoint.progress;
  EXPECT_EQ(p.step, q.step);
  EXPECT_EQ(p.epoch, q.epoch);
  EXPECT_EQ(p.data_position, q.data_position);
  EXPECT_EQ(p.loss_scale, q.loss_scale);
  EXPECT_EQ(p.rng_seed, q.rng_seed);
  EXPECT_EQ(p.rng_offset, q.rng_offset);
  EXPECT_EQ(p.counters, q.counters);
  EXPECT_EQ(p.values, q.values);
  ASSERT_EQ(p.tensors.count("sample_order"), 1u);
  EXPECT_TRUE(same_bits(p.tensors.at("sample_order"), q.tensors.at("sample_order")));
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Identical content makes identical files: HDF5 records no creation or modification times (which
// have a resolution of one second, hence the wait), so `cmp` can compare checkpoints and weights of
// two runs with the same seed (issue 15, item 9).
TEST(CheckpointFile, SameContentWrittenLaterGivesTheSameBytes) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  const Fixture saved = make_fixture(rng);
  const std::string first = dir.file("first.ckpt"), second = dir.file("second.ckpt");
  const std::string weights_first = dir.file("first.h5"), weights_second = dir.file("second.h5");
  save_checkpoint(first, saved.model, {"arch=b0", {}}, saved.checkpoint);
  save_weights(weights_first, saved.model, {"arch=b0", {{"run", "a"}}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  save_checkpoint(second, saved.model, {"arch=b0", {}}, saved.checkpoint);
  save_weights(weights_second, saved.model, {"arch=b0", {{"run", "a"}}});
  EXPECT_TRUE(file_bytes(first) == file_bytes(second)) << "checkpoints with the same content differ";
  EXPECT_TRUE(file_bytes(weights_first) == file_bytes(weights_second)) << "weight files with the same content differ";
  EXPECT_FALSE(file_bytes(first).empty());
}

TEST(CheckpointFile, LoadsAsWeightsAndSaysItIsACheckpoint) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  const Fixture saved = make_fixture(rng);
  save_checkpoint(path, saved.model, {"arch=b0", {}}, saved.checkpoint);
  std::vector<NamedTensor> model;
  for (const NamedTensor& t : saved.model) model.push_back({t.name, Tensor::zeros(t.tensor.shape(), t.tensor.dtype())});
  const LoadReport report = load_weights(path, model);
  EXPECT_EQ(report.loaded.size(), 3u);
  EXPECT_TRUE(same_bits(model[0].tensor, saved.model[0].tensor));
  EXPECT_TRUE(read_weight_file_info(path).is_checkpoint);
}

TEST(CheckpointFile, WeightFileIsNotACheckpoint) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("weights.h5");
  const Fixture saved = make_fixture(rng);
  save_weights(path, saved.model, {});
  EXPECT_FALSE(read_weight_file_info(path).is_checkpoint);
  EXPECT_EQ(error_of([&] { load_checkpoint(path, saved.model); }),
            path + ": a weights file, not a training checkpoint (no /optimizer group)");
}

TEST(CheckpointFile, OptimizerStateMustBelongToTheModel) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  Fixture f = make_fixture(rng);

  TrainingCheckpoint stray = f.checkpoint;
  stray.optimizer.slots["head.fc.weight"] = {{"exp_avg", Tensor::zeros({2}, DType::f32)}};
  EXPECT_EQ(error_of([&] { save_checkpoint(path, f.model, {}, stray); }),
            path + ": optimizer state for \"head.fc.weight\", which is not a model tensor");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(temporaries_of(path).empty());

  // A checkpoint of a bigger model loaded into a smaller one: the optimizer names are listed,
  // and the model is left untouched.
  save_checkpoint(path, f.model, {}, f.checkpoint);
  Tensor bias = Tensor::from_floats({5, 5, 5, 5}, {4});
  const std::vector<NamedTensor> smaller = {{"stem.bn.bias", bias}};
  EXPECT_EQ(error_of([&] { load_checkpoint(path, smaller); }),
            path + ": optimizer state for 1 tensor(s) the model does not have:\n  stem.conv.weight");
  EXPECT_EQ(bias.to_floats(), (std::vector<float>{5, 5, 5, 5}));
}

TEST(CheckpointFile, FailedCheckpointWriteKeepsThePreviousOne) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("last.h5");
  Fixture f = make_fixture(rng);
  save_checkpoint(path, f.model, {}, f.checkpoint);

  TrainingCheckpoint broken = f.checkpoint;
  broken.progress.step = 9999;
  broken.progress.tensors["half_written"] = Tensor();  // its write throws after the model is written
  EXPECT_NE(error_of([&] { save_checkpoint(path, f.model, {}, broken); }).find("\"half_written\" is undefined"),
            std::string::npos);
  EXPECT_EQ(load_checkpoint(path, f.model).progress.step, 1234);
  EXPECT_TRUE(temporaries_of(path).empty());
}

}  // namespace
}  // namespace sg
