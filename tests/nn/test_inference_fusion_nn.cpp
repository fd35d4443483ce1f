// The eval-mode fused forward of EfficientNet (nn/inference_fusion.h) against the layer-by-layer
// path (set_inference_fusion(false)), in f32 and f16, and the folded-weight cache following
// optimizer steps, loaded weights and training forwards.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "nn/efficientnet.h"
#include "nn/precision.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "train/optimizer.h"
#include "weights/weight_file.h"

namespace sg::nn {
namespace {

EfficientNetConfig small_config(const std::string& arch, uint64_t seed = 0) {
  EfficientNetConfig c = efficientnet_config(arch);
  c.outputs = 10;
  c.dropout = 0.0;
  c.drop_connect = 0.0;
  c.seed = seed;
  return c;
}

bool is_batch_norm_state(const std::string& name) {
  // "bn1.weight", "blocks.3.1.bn2.running_var": the component before the last starts with "bn".
  const size_t last = name.rfind('.');
  const size_t before = name.rfind('.', last - 1);
  const std::string component = name.substr(before == std::string::npos ? 0 : before + 1,
                                            last - (before == std::string::npos ? 0 : before + 1));
  return component.rfind("bn", 0) == 0;
}

void fill(testing::Rng& rng, Tensor& t, float lo, float hi) {
  t.copy_from(testing::random_tensor(rng, t.shape(), DType::f32, lo, hi));
}

// A fresh model's BNs are the identity (gamma 1, beta 0, mean 0, var 1), which folding leaves
// unchanged: give every BN random statistics and affine parameters so the fold does something.
void randomize_batch_norms(testing::Rng& rng, EfficientNet& model) {
  int count = 0;
  for (Parameter* p : model.parameters()) {
    if (!is_batch_norm_state(p->name)) continue;
    if (p->name.ends_with(".weight")) fill(rng, p->value, 0.5f, 1.5f);
    if (p->name.ends_with(".bias")) fill(rng, p->value, -0.5f, 0.5f);
    ++count;
  }
  for (Buffer* b : model.buffers()) {
    if (b->name.ends_with(".running_mean")) fill(rng, b->value, -0.3f, 0.3f);
    if (b->name.ends_with(".running_var")) fill(rng, b->value, 0.5f, 2.0f);
  }
  ASSERT_GT(count, 0) << "no batch-norm parameters found";
  mark_parameters_changed(model);
}

// ||a - b|| / ||b||.
double relative_error(const Tensor& a_t, const Tensor& b_t) {
  const std::vector<float> a = a_t.to_floats(), b = b_t.to_floats();
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(std::isfinite(a[i])) << "element " << i;
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return std::sqrt(diff / ref);
}

Tensor eval_forward(EfficientNet& model, const Tensor& x, bool fused) {
  model.set_inference_fusion(fused);
  Context ctx;  // keeps nothing for backward
  Tensor y = model.forward(ctx, x);
  if (fused) {
    EXPECT_GT(model.folded_weight_bytes(), 0u) << "the fused path did not run";
  } else {
    EXPECT_EQ(model.folded_weight_bytes(), 0u) << "switching fusion off frees the folded weights";
  }
  return y;
}

// f32 bound. Folding changes rounding only: w * scale is rounded once to f32 (relative error
// u = 2^-24 = 6e-8 per weight) instead of the conv output then the BN being rounded (2-3 u per
// activation), and the fused kernels may sum in another order (the GEMM's reduction over K
// <= 1152 is the same; the depthwise pass over k*k <= 25 taps may differ). Per layer that is a
// few u of relative change; over B0's ~50 conv layers in sequence, amplified by the network's
// conditioning (random weights and BN statistics; SE gates and swish are well-conditioned), the
// logits move by ~1e-6 relative (measured 2.5e-7 for B0, 8e-7 for Lite0). 1e-4 leaves two
// orders of margin; a wrong fold (a missing scale, the mean not subtracted, a stale cache)
// changes the logits by order 1.
constexpr double kFusedTolF32 = 1e-4;
// f16: both paths round every layer output to f16 (u = 4.9e-4) but at different points (the
// unfused path rounds the conv output and then the BN output; the fused one rounds once), so they
// differ like two f16 forwards: the f16-vs-f32 bound of tests/nn/test_precision.cpp (3e-2).
constexpr double kFusedTolF16 = 3e-2;

void expect_fused_matches_unfused(const std::string& arch, DType precision, double tol) {
  SCOPED_TRACE(arch + " " + std::string(dtype_name(precision)));
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet model(small_config(arch));
  randomize_batch_norms(rng, model);
  model.set_precision(precision);
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  const Tensor fused = eval_forward(model, x, true);
  const Tensor again = eval_forward(model, x, true);  // from the cache
  const Tensor unfused = eval_forward(model, x, false);
  ASSERT_EQ(fused.dtype(), DType::f32);
  ASSERT_EQ(fused.shape(), unfused.shape());
  const double err = relative_error(fused, unfused);
  std::cout << "[          ] " << arch << " " << dtype_name(precision) << " fused vs unfused logits: relative error "
            << err << "\n";
  EXPECT_LT(err, tol);
  EXPECT_EQ(relative_error(again, fused), 0.0) << "a cached fold must give the same logits";
}

TEST(InferenceFusionNN, B0FusedEvalForwardMatchesUnfusedF32) {
  expect_fused_matches_unfused("b0", DType::f32, kFusedTolF32);
}
TEST(InferenceFusionNN, Lite0FusedEvalForwardMatchesUnfusedF32) {
  expect_fused_matches_unfused("lite0", DType::f32, kFusedTolF32);
}
TEST(InferenceFusionNN, B0FusedEvalForwardMatchesUnfusedF16) {
  expect_fused_matches_unfused("b0", DType::f16, kFusedTolF16);
}
TEST(InferenceFusionNN, Lite0FusedEvalForwardMatchesUnfusedF16) {
  expect_fused_matches_unfused("lite0", DType::f16, kFusedTolF16);
}

// The fused path runs only where nothing is kept for backward and the model is in eval mode.
TEST(InferenceFusionNN, TrainingAndBackwardForwardsAreNotFused) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet model(small_config("lite0"));
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  Context keep(true);
  model.forward(keep, x);
  EXPECT_EQ(model.folded_weight_bytes(), 0u) << "a forward that keeps for backward must not fold";
  EXPECT_GT(keep.saved_count(), 0u);
  model.set_training(true);
  Context train;
  model.forward(train, x);
  EXPECT_EQ(model.folded_weight_bytes(), 0u) << "a training forward must not fold";
}

// An optimizer step changes the weights in place and bumps their versions: the next fused
// forward refolds, and agrees with the unfused path on the new weights.
TEST(InferenceFusionNN, FoldedWeightsFollowAnOptimizerStep) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet model(small_config("b0"));
  randomize_batch_norms(rng, model);
  const Tensor x = testing::random_tensor(rng, {1, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  const Tensor before = eval_forward(model, x, true);
  for (Parameter* p : model.parameters()) fill(rng, p->grad, -1.0f, 1.0f);
  train::OptimizerConfig oc;
  oc.name = "sgd";
  oc.lr = 0.05f;
  oc.weight_decay = 0.0f;
  auto optimizer = train::make_optimizer(oc, model.parameters());
  optimizer->step();
  const Tensor after = eval_forward(model, x, true);
  const Tensor unfused = eval_forward(model, x, false);
  EXPECT_GT(relative_error(after, before), 1e-3) << "the step should move the logits";
  EXPECT_LT(relative_error(after, unfused), kFusedTolF32) << "stale folded weights after the step";
}

// Weights loaded in place, then mark_parameters_changed (the load paths' contract, as for the
// f16/bf16 compute copies): the fused forward gives the loaded model's logits.
TEST(InferenceFusionNN, FoldedWeightsFollowLoadedWeights) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (DType precision : {DType::f32, DType::f16}) {
    SCOPED_TRACE(dtype_name(precision));
    EfficientNet source(small_config("b0", 7)), target(small_config("b0", 0));
    randomize_batch_norms(rng, source);
    randomize_batch_norms(rng, target);
    source.set_precision(precision);
    target.set_precision(precision);
    const Tensor x = testing::random_tensor(rng, {1, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
    const Tensor expected = eval_forward(source, x, false);
    const Tensor stale = eval_forward(target, x, true);  // builds the target's cache
    ASSERT_GT(relative_error(stale, expected), 1e-2) << "the two models should differ";
    testing::TempDir dir;
    const std::string path = dir.file("source.h5");
    save_weights(path, named_tensors(source.parameters(), source.buffers()), {"arch=b0 outputs=10", {}});
    load_weights(path, named_tensors(target.parameters(), target.buffers()));
    mark_parameters_changed(target);
    const Tensor loaded = eval_forward(target, x, true);
    EXPECT_LT(relative_error(loaded, expected), precision == DType::f32 ? kFusedTolF32 : kFusedTolF16);
  }
}

// A training forward moves the BN running statistics (no parameter version changes): the model
// drops its folded weights, and the next eval forward folds the new statistics.
TEST(InferenceFusionNN, FoldedWeightsFollowRunningStatistics) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet model(small_config("lite0"));
  randomize_batch_norms(rng, model);
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  const Tensor before = eval_forward(model, x, true);
  model.set_training(true);
  Context train;
  model.forward(train, x);
  EXPECT_EQ(model.folded_weight_bytes(), 0u);
  model.set_training(false);
  const Tensor after = eval_forward(model, x, true);
  const Tensor unfused = eval_forward(model, x, false);
  EXPECT_GT(relative_error(after, before), 1e-3) << "the running statistics should have moved";
  EXPECT_LT(relative_error(after, unfused), kFusedTolF32);
}

}  // namespace
}  // namespace sg::nn
