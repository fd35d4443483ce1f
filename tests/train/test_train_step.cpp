// One training step (train/train_step.h): f16 and bf16 gradients against f32, dynamic loss
// scaling (skip and halve on overflow, grow after N good steps), f32 master weights, gradient
// accumulation, clipping, the scaler state through a checkpoint, and the NaN/inf report.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "nn/efficientnet.h"
#include "nn/precision.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "train/train_step.h"
#include "weights/checkpoint_file.h"

namespace sg::train {
namespace {

constexpr int64_t kOutputs = 5;

nn::EfficientNetConfig small_b0(double dropout = 0.0) {
  nn::EfficientNetConfig c = nn::efficientnet_config("b0");
  c.outputs = kOutputs;
  c.dropout = dropout;
  c.drop_connect = dropout;
  return c;
}

Batch random_batch(testing::Rng& rng, int64_t n, int64_t size = 64, Device device = Device::cpu()) {
  std::vector<float> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(float(rng.integer(0, kOutputs - 1)));
  return {testing::random_tensor(rng, {n, size, size, 3}, DType::f32, -2.0f, 2.0f).to(device),
          Tensor::from_floats(labels, {n}, DType::i32).to(device)};
}

std::map<std::string, std::vector<float>> values_of(nn::Module& m) {
  std::map<std::string, std::vector<float>> out;
  for (nn::Parameter* p : m.parameters()) out[p->name] = p->value.to_floats();
  return out;
}

nn::Parameter& parameter_named(nn::Module& m, const std::string& name) {
  for (nn::Parameter* p : m.parameters())
    if (p->name == name) return *p;
  throw Error("no parameter " + name);
}

void set_element(nn::Parameter& p, size_t index, float value) {
  std::vector<float> v = p.value.to_floats();
  v[index] = value;
  p.value.copy_from(Tensor::from_floats(v, p.value.shape()));
  p.mark_changed();
}

// Norm-wise relative error of all gradients together: sqrt(sum (a/scale - b)^2 / sum b^2).
double gradient_error(nn::Module& mixed, float scale, nn::Module& reference) {
  const auto mp = mixed.parameters(), rp = reference.parameters();
  double diff = 0, ref = 0;
  for (size_t i = 0; i < mp.size(); ++i) {
    const std::vector<float> a = mp[i]->grad.to_floats(), b = rp[i]->grad.to_floats();
    for (size_t j = 0; j < a.size(); ++j) {
      const double d = double(a[j]) / scale - b[j];
      diff += d * d;
      ref += double(b[j]) * b[j];
    }
  }
  return std::sqrt(diff / ref);
}

// Tolerances on the gradient (all parameters together, norm-wise, f16 divided by its loss
// scale): the random-walk estimate of tests/nn/test_precision.cpp, sqrt(80) u, gives 4.4e-3
// (f16) and 3.5e-2 (bf16); the global norm is dominated by the large, well-rounded gradients,
// and 4 seeds measured 4.4e-4 to 4.8e-4 (f16) and 3.2e-3 to 3.4e-3 (bf16): the ratio is the
// 2^3 between the two formats' roundoffs. Bounds 3e-3 and 2e-2; a gradient that misses its loss
// scale, a layer or a stale weight is off by order 1.
void expect_gradients_close_to_f32(DType precision, double tol) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet reference(small_b0()), mixed(small_b0());
  // Evaluation-mode BN (see tests/nn/test_precision.cpp: training-mode BN over 8 values per
  // channel amplifies rounding noise, which measures the input's conditioning, not our casts).
  mixed.set_precision(precision);
  Sgd opt32(reference.parameters(), {}), opt16(mixed.parameters(), {});
  TrainStepOptions o;
  o.micro_batches = 2;  // the first micro-batch leaves its gradients in place
  o.loss_scale.init_scale = 1024.0f;
  TrainStep step32(reference, opt32, o), step16(mixed, opt16, o);
  EXPECT_EQ(step16.loss_scaling(), precision == DType::f16);
  const Batch batch = random_batch(rng, 2);
  const StepResult r32 = step32.micro_batch(batch), r16 = step16.micro_batch(batch);
  EXPECT_FALSE(r16.completed);
  EXPECT_NEAR(r16.loss, r32.loss, 5 * tol * std::abs(r32.loss));
  const double err = gradient_error(mixed, step16.loss_scale(), reference);
  std::cout << "[          ] B0 gradients " << dtype_name(precision) << " vs f32: relative error " << err << "\n";
  EXPECT_LT(err, tol);
  EXPECT_GT(err, 0.0);
  for (nn::Parameter* p : mixed.parameters()) ASSERT_EQ(p->grad.dtype(), DType::f32) << p->name;
}

TEST(TrainStep, F16GradientsAgreeWithF32) { expect_gradients_close_to_f32(DType::f16, 3e-3); }
TEST(TrainStep, Bf16GradientsAgreeWithF32) { expect_gradients_close_to_f32(DType::bf16, 2e-2); }

TEST(TrainStep, LossScalingSkipsOnOverflowAndGrowsAfterGoodSteps) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet m(small_b0());
  m.set_training(true);
  m.set_precision(DType::f16);
  AdamW opt(m.parameters(), {});
  TrainStepOptions o;
  o.loss_scale.growth_interval = 3;  // 2000 in training; short here
  TrainStep step(m, opt, o);
  EXPECT_EQ(step.loss_scale(), 65536.0f) << "GradScaler's initial 2^16";
  const Batch batch = random_batch(rng, 2);

  // Provoke an overflow: dlogits times 2^100 is inf in f16.
  step.set_loss_scale_state({std::ldexp(1.0f, 100), 0});
  const auto before = values_of(m);
  const StepResult skipped = step.micro_batch(batch);
  EXPECT_TRUE(skipped.completed);
  EXPECT_TRUE(skipped.skipped);
  EXPECT_TRUE(std::isfinite(skipped.loss));
  EXPECT_EQ(skipped.loss_scale, std::ldexp(1.0f, 99)) << "halved";
  EXPECT_EQ(step.loss_scale_state().growth_tracker, 0);
  EXPECT_EQ(opt.steps_taken(), 0);
  EXPECT_EQ(values_of(m), before) << "a skipped step changes no weight";
  for (nn::Parameter* p : m.parameters())
    for (float g : p->grad.to_floats()) ASSERT_EQ(g, 0.0f) << p->name << ": gradients are zeroed";
  EXPECT_EQ(step.step_index(), 1) << "a skipped step still counts as a step";

  // Good steps: the scale doubles after the third, and each step updates the weights.
  step.set_loss_scale_state({256.0f, 0});
  for (int i = 1; i <= 3; ++i) {
    const StepResult r = step.micro_batch(batch);
    EXPECT_TRUE(r.completed);
    EXPECT_FALSE(r.skipped) << "step " << i;
    EXPECT_EQ(r.loss_scale, i < 3 ? 256.0f : 512.0f) << "after good step " << i;
  }
  EXPECT_EQ(opt.steps_taken(), 3);
  EXPECT_NE(values_of(m), before);
  // Master weights and gradients stay f32; the compute copies are f16 and follow the update.
  for (nn::Parameter* p : m.parameters()) {
    ASSERT_EQ(p->value.dtype(), DType::f32) << p->name;
    ASSERT_EQ(p->grad.dtype(), DType::f32) << p->name;
  }
  nn::Parameter& w = parameter_named(m, "conv_head.weight");
  ASSERT_EQ(w.compute.value.dtype(), DType::f16);
  const Tensor& copy = nn::compute_weight(w, Tensor::zeros({1}, DType::f16), "test", {});
  const std::vector<float> master = w.value.to_floats(), half = copy.to_floats();
  for (size_t i = 0; i < master.size(); ++i)
    ASSERT_EQ(half[i], to_acc(from_acc<Half>(master[i]))) << "the f16 copy is the rounded master after the update";
}

TEST(TrainStep, MasterWeightsStayF32InBf16AndScaleIsOne) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet m(small_b0(0.2));
  m.set_training(true);
  m.set_precision(DType::bf16);
  Sgd opt(m.parameters(), {0.01f, 0.9f});
  TrainStep step(m, opt, {});
  const auto before = values_of(m);
  const StepResult r = step.micro_batch(random_batch(rng, 2));
  EXPECT_TRUE(r.completed && !r.skipped);
  EXPECT_EQ(r.loss_scale, 1.0f);
  EXPECT_FALSE(step.loss_scaling());
  EXPECT_NE(values_of(m), before);
  for (nn::Parameter* p : m.parameters()) ASSERT_EQ(p->value.dtype(), DType::f32) << p->name;
  EXPECT_EQ(step.rng_offset(), 9u + 1u) << "dropout and drop-connect drew their masks";
}

TEST(TrainStep, AccumulatedMicroBatchesEqualOneBatch) {
  // Eval mode: BN uses its running statistics, so two micro-batches of 1 and one batch of 2
  // have the same mean gradient.
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet a(small_b0()), b(small_b0());
  Sgd opt_a(a.parameters(), {0.5f}), opt_b(b.parameters(), {0.5f});
  TrainStepOptions split;
  split.micro_batches = 2;
  split.loss = LossKind::mse;
  TrainStepOptions whole = split;
  whole.micro_batches = 1;
  TrainStep step_a(a, opt_a, split), step_b(b, opt_b, whole);
  const Tensor images = testing::random_tensor(rng, {2, 64, 64, 3});
  const Tensor targets = testing::random_tensor(rng, {2, kOutputs});
  const std::vector<float> xi = images.to_floats(), ti = targets.to_floats();
  const auto half = [&](const std::vector<float>& v, int i, Shape s) {
    const size_t n = v.size() / 2;
    return Tensor::from_floats(std::vector<float>(v.begin() + long(i * n), v.begin() + long((i + 1) * n)), s);
  };
  const Batch parts[2] = {{half(xi, 0, {1, 64, 64, 3}), half(ti, 0, {1, kOutputs})},
                          {half(xi, 1, {1, 64, 64, 3}), half(ti, 1, {1, kOutputs})}};
  const StepResult ra = step_a.step(parts);
  const Batch whole_batch{images, targets};
  const StepResult rb = step_b.step(std::span<const Batch>(&whole_batch, 1));
  EXPECT_TRUE(ra.completed && rb.completed);
  EXPECT_NEAR(ra.loss, rb.loss, 1e-5 * std::abs(rb.loss));
  const auto va = values_of(a), vb = values_of(b);
  for (const auto& [name, values] : va)
    ASSERT_TRUE(testing::all_close(testing::to_doubles(Tensor::from_floats(values, {int64_t(values.size())})),
                                   testing::to_doubles(Tensor::from_floats(vb.at(name), {int64_t(values.size())})),
                                   {1e-6, 1e-4}))
        << name;
  EXPECT_THROW(step_a.step(std::span<const Batch>(parts, 1)), Error) << "a step needs both micro-batches";
}

TEST(TrainStep, ClippingBoundsTheUpdate) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet m(small_b0());
  m.set_training(true);
  Sgd opt(m.parameters(), {1.0f});  // plain SGD, lr 1: the update is the clipped gradient
  TrainStepOptions o;
  o.max_grad_norm = 1e-3f;
  o.loss = LossKind::bce_with_logits;
  TrainStep step(m, opt, o);
  const auto before = values_of(m);
  Batch batch = random_batch(rng, 2);
  batch.targets = testing::random_tensor(rng, {2, kOutputs}, DType::f32, 0.0f, 1.0f);
  const StepResult r = step.micro_batch(batch);
  ASSERT_TRUE(std::isfinite(r.grad_norm));
  EXPECT_GT(r.grad_norm, 1e-3f) << "the test needs a gradient above the clipping norm";
  double moved = 0;
  for (const auto& [name, values] : values_of(m))
    for (size_t i = 0; i < values.size(); ++i) moved += std::pow(double(values[i]) - before.at(name)[i], 2);
  EXPECT_NEAR(std::sqrt(moved), 1e-3, 2e-5);
}

TEST(TrainStep, ScalerStateRoundTripsThroughACheckpoint) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet m(small_b0());
  m.set_precision(DType::f16);
  AdamW opt(m.parameters(), {});
  TrainStepOptions o;
  o.seed = 77;
  o.loss_scale.growth_interval = 10;
  TrainStep step(m, opt, o);
  step.set_loss_scale_state({2048.0f, 7});
  step.set_step_index(1234);
  step.set_rng_offset(99);
  TrainingCheckpoint checkpoint;
  step.save_progress(checkpoint.progress);
  testing::TempDir dir;
  const std::string path = dir.file("step.ckpt.h5");
  const auto model = named_tensors(m.parameters(), m.buffers());
  save_checkpoint(path, model, {"arch=b0", {}}, checkpoint);

  nn::EfficientNet m2(small_b0());
  m2.set_precision(DType::f16);
  AdamW opt2(m2.parameters(), {});
  TrainStep resumed(m2, opt2, o);
  resumed.restore_progress(load_checkpoint(path, named_tensors(m2.parameters(), m2.buffers())).progress);
  EXPECT_EQ(resumed.loss_scale_state().scale, 2048.0f);
  EXPECT_EQ(resumed.loss_scale_state().growth_tracker, 7);
  EXPECT_EQ(resumed.step_index(), 1234);
  EXPECT_EQ(resumed.rng_offset(), 99u);
  TrainStepOptions other = o;
  other.seed = 78;
  TrainStep wrong_seed(m2, opt2, other);
  EXPECT_THROW(wrong_seed.restore_progress(checkpoint.progress), Error);
}

std::string error_of(TrainStep& step, const Batch& batch) {
  try {
    step.micro_batch(batch);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A NaN or inf planted in one weight after a good step: the error names step 1 and the layer.
void expect_non_finite_report(DType precision, const std::string& weight, float planted, const std::string& layer) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  SCOPED_TRACE(std::string(dtype_name(precision)) + " " + weight);
  const Batch batch = random_batch(rng, 2);
  // m fails in the step's forward; twin has the same history and runs that forward once,
  // without the diagnosis, for the BN running statistics to compare with.
  nn::EfficientNet m(small_b0(0.2)), twin(small_b0(0.2));
  Sgd opt(m.parameters(), {0.01f}), twin_opt(twin.parameters(), {0.01f});
  TrainStep step(m, opt, {}), twin_step(twin, twin_opt, {});
  for (nn::EfficientNet* net : {&m, &twin}) {
    net->set_training(true);
    net->set_precision(precision);
  }
  step.micro_batch(batch);  // step 0 (in f16 it may be skipped at the initial scale: still a step)
  twin_step.micro_batch(batch);
  set_element(parameter_named(m, weight), 3, planted);
  set_element(parameter_named(twin, weight), 3, planted);
  const std::string msg = error_of(step, batch);
  EXPECT_NE(msg.find("training step 1 "), std::string::npos) << msg;
  EXPECT_NE(msg.find("first layer whose output was not finite is '" + layer + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::string(dtype_name(precision))), std::string::npos) << msg;
  // The diagnostic re-run put the running statistics back: they moved once, as in one forward.
  nn::Context once(true, 0, twin_step.rng_offset());
  twin.forward(once, batch.images);
  const auto mb = m.buffers(), tb = twin.buffers();
  for (size_t i = 0; i < mb.size(); ++i) {
    const std::vector<float> a = mb[i]->value.to_floats(), b = tb[i]->value.to_floats();
    for (size_t j = 0; j < a.size(); ++j)
      ASSERT_TRUE(a[j] == b[j] || (std::isnan(a[j]) && std::isnan(b[j]))) << mb[i]->name << "[" << j << "]";
  }
}

TEST(TrainStep, NanLossNamesStepAndFirstLayerF32) {
  expect_non_finite_report(DType::f32, "blocks.2.0.conv_dw.weight", std::numeric_limits<float>::quiet_NaN(),
                           "blocks.2.0.conv_dw");
}
TEST(TrainStep, InfLossNamesStepAndFirstLayerBf16) {
  expect_non_finite_report(DType::bf16, "blocks.4.1.conv_pwl.weight", std::numeric_limits<float>::infinity(),
                           "blocks.4.1.conv_pwl");
}
TEST(TrainStep, NanLossNamesStepAndFirstLayerF16) {
  expect_non_finite_report(DType::f16, "blocks.5.2.se.conv_reduce.weight", std::numeric_limits<float>::quiet_NaN(),
                           "blocks.5.2.se");
}

TEST(TrainStep, BadInputNamesTheProblem) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet m(small_b0());
  m.set_training(true);
  Sgd opt(m.parameters(), {});
  TrainStep step(m, opt, {});
  Batch batch = random_batch(rng, 2);
  // NaN in the input.
  Batch nan_input = batch;
  std::vector<float> x = batch.images.to_floats();
  x[17] = std::numeric_limits<float>::quiet_NaN();
  nan_input.images = Tensor::from_floats(x, batch.images.shape());
  const std::string msg = error_of(step, nan_input);
  EXPECT_NE(msg.find("training step 0 "), std::string::npos) << msg;
  EXPECT_NE(msg.find("input images hold inf or NaN"), std::string::npos) << msg;
  // Targets of the wrong kind.
  Batch wrong = batch;
  wrong.targets = Tensor::zeros({2, kOutputs}, DType::f32);
  EXPECT_NE(error_of(step, wrong).find("expected i32[2] class indices"), std::string::npos) << error_of(step, wrong);
  // An optimizer over other parameters.
  nn::EfficientNet other(small_b0());
  Sgd other_opt(other.parameters(), {});
  EXPECT_THROW(TrainStep(m, other_opt, {}), Error);
  EXPECT_EQ(parse_loss_kind("bce"), LossKind::bce_with_logits);
  EXPECT_THROW(parse_loss_kind("hinge"), Error);
}

// A B0 training step on the GPU in `precision` against the f32 CPU step: gradients within the
// tolerances of the CPU mixed-precision tests above (f32: summation order only).
void expect_gpu_step_matches_cpu(DType precision, double tol) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  nn::EfficientNet reference(small_b0()), gpu(small_b0(), Device::cuda(0));
  gpu.set_precision(precision);
  Sgd opt_cpu(reference.parameters(), {}), opt_gpu(gpu.parameters(), {});
  TrainStepOptions o;
  o.micro_batches = 2;
  o.loss_scale.init_scale = 1024.0f;
  TrainStep cpu_step(reference, opt_cpu, o), gpu_step(gpu, opt_gpu, o);
  // 64 px on a GPU; 32 px on the emulated device, which runs every thread of every kernel on the CPU.
  const Batch batch = random_batch(rng, 2, testing::on_emulated_cuda() ? 32 : 64);
  cpu_step.micro_batch(batch);
  gpu_step.micro_batch({batch.images.to(Device::cuda(0)), batch.targets.to(Device::cuda(0))});
  const double err = gradient_error(gpu, precision == DType::f16 ? gpu_step.loss_scale() : 1.0f, reference);
  std::cout << "[          ] B0 gradients on " << cuda_device_name(0) << ", " << dtype_name(precision)
            << " vs the CPU's f32: relative error " << err << "\n";
  EXPECT_LT(err, tol);
  const StepResult r = gpu_step.micro_batch({batch.images.to(Device::cuda(0)), batch.targets.to(Device::cuda(0))});
  EXPECT_TRUE(r.completed && !r.skipped);
}

TEST(TrainStepCuda, F32StepOnTheGpuMatchesCpuGradients) {
  SG_REQUIRE_CUDA();
  expect_gpu_step_matches_cpu(DType::f32, 1e-4);
}
TEST(TrainStepCuda, F16StepOnTheGpuMatchesCpuGradients) {
  SG_REQUIRE_CUDA();
  expect_gpu_step_matches_cpu(DType::f16, 3e-3);
}
TEST(TrainStepCuda, Bf16StepOnTheGpuMatchesCpuGradients) {
  SG_REQUIRE_CUDA();
  expect_gpu_step_matches_cpu(DType::bf16, 2e-2);
}

}  // namespace
}  // namespace sg::train
