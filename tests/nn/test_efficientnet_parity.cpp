// PyTorch parity of EfficientNet B0 and B3 against torchvision 0.14 (tests/golden/golden_efficientnet.py):
// both sides use the same synthetic weights (tests/support/synthetic_weights.h), so the golden file
// holds only logits, losses and gradient summaries.
//   logits:     max |ours - ref| <= 1e-4 * max |ref| over the [2, 1000] logits (f32)
//   gradients:  per parameter, |norm - ref| <= 1e-3 * ref norm; |sum - ref| <= 1e-3 * (|ref sum| + ref norm);
//               each sampled element |g - ref| <= 1e-3 * (|ref| + ref rms)
//               (except the gradients that are exactly zero: see zero_in_exact_arithmetic)
//   10 SGD steps: every loss |ours - ref| <= 1e-3 * |ref|
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/loss.h"
#include "nn/efficientnet.h"
#include "tests/support/synthetic_weights.h"
#include "tests/support/testing.h"
#include "train/optimizer.h"

namespace sg::nn {
namespace {

using sg::testing::GoldenFile;
using sg::testing::synthetic_tensor;

constexpr int64_t kTrainSize = 128;  // golden_efficientnet.TRAIN_SIZE
const std::vector<int32_t> kTrainLabels{3, 997};

// torchvision's conventions, with dropout and stochastic depth off as in the golden script.
EfficientNetConfig parity_config(const std::string& arch) {
  EfficientNetConfig c = efficientnet_config(arch);
  c.outputs = 1000;
  c.dropout = 0.0;
  c.drop_connect = 0.0;
  return c;
}

std::unique_ptr<EfficientNet> synthetic_model(const std::string& arch) {
  auto model = std::make_unique<EfficientNet>(parity_config(arch));
  sg::testing::fill_synthetic(*model, model->layout().head_channels);
  return model;
}

Tensor synthetic_input(const std::string& name, int64_t h, int64_t w) {
  return synthetic_tensor(name, {2, h, w, 3}, -2.0, 2.0);
}

Tensor train_labels() {
  Tensor t = Tensor::empty({int64_t(kTrainLabels.size())}, DType::i32);
  std::copy(kTrainLabels.begin(), kTrainLabels.end(), t.data_as<int32_t>());
  return t;
}

// One training step's forward, CE loss (mean) and backward; returns the loss.
double train_step(EfficientNet& model, const Tensor& x, const Tensor& labels) {
  model.set_training(true);
  Context ctx(/*keep_for_backward=*/true);
  const Tensor logits = model.forward(ctx, x);
  Tensor loss = Tensor::empty({1}, DType::f32);
  cross_entropy_forward(CrossEntropyParams{}, logits, labels, loss);
  Tensor dlogits = Tensor::empty(logits.shape(), DType::f32);
  cross_entropy_backward(CrossEntropyParams{}, logits, labels, 1.0f, dlogits);
  model.backward(ctx, dlogits);
  EXPECT_EQ(ctx.saved_count(), 0u) << "every module's saved state should be consumed by backward";
  return double(loss.data_as<float>()[0]);
}

TEST(EfficientNetParity, GeneratorMatchesPythonBitForBit) {
  const GoldenFile golden("efficientnet");
  const EfficientNet model(parity_config("b0"));
  const auto check = [&](const std::string& name, const Shape& shape, int64_t classifier_in) {
    SCOPED_TRACE(name);
    const auto [lo, hi] = sg::testing::synthetic_range(name, shape, classifier_in);
    const std::vector<double> ours = sg::testing::to_doubles(synthetic_tensor(name, shape, lo, hi));
    const std::vector<double> ref = golden.doubles("generator/" + name);
    ASSERT_LE(ref.size(), ours.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(float(ours[i]), float(ref[i])) << "element " << i;
  };
  check("conv_stem.weight", {32, 3, 3, 3}, 1280);
  check("bn1.running_var", {32}, 1280);
  check("blocks.1.0.se.conv_reduce.bias", {4}, 1280);
  check("classifier.bias", {1000}, 1280);
  const std::vector<double> input = sg::testing::to_doubles(synthetic_input("input.train", kTrainSize, kTrainSize));
  const std::vector<double> ref = golden.doubles("generator/input.train");
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(float(input[i]), float(ref[i])) << "input element " << i;
}

// max |a - b| / max |ref| over two equally long vectors.
double max_relative_error(const std::vector<double>& ours, const std::vector<double>& ref) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::fabs(ours[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return err / scale;
}

void expect_logits_match(const std::string& arch) {
  SCOPED_TRACE(arch);
  const GoldenFile golden("efficientnet");
  auto model = synthetic_model(arch);
  model->set_training(false);
  for (const auto& [h, w, key] : {std::tuple<int64_t, int64_t, std::string>{224, 224, "logits_224"},
                                  std::tuple<int64_t, int64_t, std::string>{193, 257, "logits_193x257"}}) {
    Context ctx;
    const Tensor logits = model->forward(ctx, synthetic_input(detail::concat("input.", h, "x", w), h, w));
    const std::vector<double> ref = golden.doubles(arch + "/" + key);
    const std::vector<double> ours = sg::testing::to_doubles(logits);
    ASSERT_EQ(ours.size(), ref.size()) << key;
    const double rel = max_relative_error(ours, ref);
    std::printf("[ parity ] efficientnet-%s %s: max |ours - torch| / max |torch| = %.3g\n", arch.c_str(), key.c_str(),
                rel);
    EXPECT_LE(rel, 1e-4) << key;
    EXPECT_TRUE(sg::testing::all_close(ours, ref, {1e-5, 1e-3})) << key;
  }
}

TEST(EfficientNetParity, B0EvalLogitsMatchTorchvision) { expect_logits_match("b0"); }
TEST(EfficientNetParity, B3EvalLogitsMatchTorchvision) { expect_logits_match("b3"); }

// The bias of a block's projection BN (bn3; bn2 in the expand-ratio-1 blocks of stage 0) has an
// exactly zero gradient in train mode when the next block starts with a 1x1 conv: its per-channel
// shift then flows linearly (residual adds, 1x1 convs) into train-mode BNs, which subtract the
// batch mean. Ours and torch's are rounding noise (~1e-8), so they are checked for being ~0, not
// against each other. Not so inside stage 0 (B1 and up: its next block starts with a zero-padded
// depthwise conv, which does not carry a constant shift through at the borders).
bool zero_in_exact_arithmetic(const std::string& name, const EfficientNetLayout& layout) {
  const auto ends = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const std::string last_of_stage0 = detail::concat("blocks.0.", layout.stages[0].repeats - 1, ".bn2.bias");
  return ends(".bn3.bias") || name == last_of_stage0;
}

void expect_gradients_match(const std::string& arch) {
  SCOPED_TRACE(arch);
  const GoldenFile golden("efficientnet");
  auto model = synthetic_model(arch);
  model->zero_grad();
  const double loss = train_step(*model, synthetic_input("input.train", kTrainSize, kTrainSize), train_labels());
  const double ref_loss = golden.scalar(arch + "/train_loss");
  EXPECT_LE(std::fabs(loss - ref_loss), 1e-4 * std::fabs(ref_loss)) << "loss " << loss << " torch " << ref_loss;

  const std::vector<Parameter*> params = model->parameters();
  const std::vector<double> hashes = golden.doubles(arch + "/param_hash");
  const std::vector<double> norms = golden.doubles(arch + "/grad_norm");
  const std::vector<double> sums = golden.doubles(arch + "/grad_sum");
  const std::vector<double> index = golden.doubles(arch + "/grad_index");
  const std::vector<double> sample = golden.doubles(arch + "/grad_sample");
  ASSERT_EQ(params.size(), norms.size()) << "parameters: ours vs torchvision's";
  const size_t samples = index.size() / params.size();
  double worst_norm = 0, worst_sum = 0, worst_sample = 0, worst_zero = 0;
  for (size_t p = 0; p < params.size(); ++p) {
    const Parameter& param = *params[p];
    SCOPED_TRACE(param.name);
    ASSERT_EQ(double(sg::testing::fnv1a64(param.name) & 0xFFFFFF), hashes[p]) << "parameter order differs";
    const std::vector<double> g = sg::testing::to_doubles(param.grad);
    double norm = 0, sum = 0;
    for (double v : g) {
      norm += v * v;
      sum += v;
    }
    norm = std::sqrt(norm);
    if (zero_in_exact_arithmetic(param.name, model->layout())) {
      // Both sides hold only rounding noise: compare with the BN weight's gradient just before.
      ASSERT_GT(p, 0u);
      ASSERT_EQ(params[p - 1]->name, param.name.substr(0, param.name.size() - 4) + "weight");
      const double scale = norms[p - 1];
      worst_zero = std::max({worst_zero, norm / scale, norms[p] / scale});
      EXPECT_LE(norm, 1e-4 * scale) << "should be ~0: norm " << norm << ", BN weight's gradient norm " << scale;
      EXPECT_LE(norms[p], 1e-4 * scale) << "torch's should be ~0 too";
      continue;
    }
    const double norm_err = std::fabs(norm - norms[p]) / norms[p];
    const double sum_err = std::fabs(sum - sums[p]) / (std::fabs(sums[p]) + norms[p]);
    worst_norm = std::max(worst_norm, norm_err);
    worst_sum = std::max(worst_sum, sum_err);
    EXPECT_LE(norm_err, 1e-3) << "norm " << norm << " torch " << norms[p];
    EXPECT_LE(sum_err, 1e-3) << "sum " << sum << " torch " << sums[p];
    const double rms = norms[p] / std::sqrt(double(g.size()));
    for (size_t k = 0; k < samples; ++k) {
      const double i = index[p * samples + k];
      if (i < 0) break;
      const double ref = sample[p * samples + k];
      const double err = std::fabs(g.at(size_t(i)) - ref) / (std::fabs(ref) + rms);
      worst_sample = std::max(worst_sample, err);
      EXPECT_LE(err, 1e-3) << "element " << i << ": " << g[size_t(i)] << " torch " << ref;
    }
  }
  std::printf("[ parity ] efficientnet-%s gradients of %zu parameters: loss rel err %.3g, worst norm rel err %.3g, "
              "sum %.3g, sampled elements %.3g; zero gradients' norm / BN weight's %.3g\n",
              arch.c_str(), params.size(), std::fabs(loss - ref_loss) / std::fabs(ref_loss), worst_norm, worst_sum,
              worst_sample, worst_zero);
}

TEST(EfficientNetParity, B0TrainStepGradientsMatchTorchvision) { expect_gradients_match("b0"); }
TEST(EfficientNetParity, B3TrainStepGradientsMatchTorchvision) { expect_gradients_match("b3"); }

// torch.optim.SGD(lr, momentum, weight_decay) on one fixed batch: our Sgd has PyTorch's
// convention (buffer = gradient on the first step, then momentum * buffer + gradient).
TEST(EfficientNetParity, B0SgdLossCurveMatchesTorchvision) {
  const GoldenFile golden("efficientnet");
  auto model = synthetic_model("b0");
  train::SgdOptions options;
  options.lr = float(golden.scalar("b0/sgd_lr"));
  options.momentum = float(golden.scalar("b0/sgd_momentum"));
  options.weight_decay = float(golden.scalar("b0/sgd_weight_decay"));
  train::Sgd sgd(model->parameters(), options);
  const std::vector<double> ref = golden.doubles("b0/sgd_losses");
  const Tensor x = synthetic_input("input.train", kTrainSize, kTrainSize);
  const Tensor labels = train_labels();
  double worst = 0;
  for (size_t step = 0; step < ref.size(); ++step) {
    sgd.zero_grad();
    const double loss = train_step(*model, x, labels);
    sgd.step();
    const double err = std::fabs(loss - ref[step]) / std::fabs(ref[step]);
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-3) << "step " << step << ": loss " << loss << " torch " << ref[step];
  }
  EXPECT_LT(ref.back(), ref.front() - 1.0) << "the golden curve should show learning";
  std::printf("[ parity ] efficientnet-b0 %zu SGD steps: worst loss rel err %.3g (first %.5f, last %.5f)\n", ref.size(),
              worst, ref.front(), ref.back());
}

}  // namespace
}  // namespace sg::nn
