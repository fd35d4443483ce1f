// The memory plan against the allocator: a real EfficientNet training step as the trainer takes it
// (train::run_trainer_step: its two batches, forward, cross-entropy, backward, AdamW; B0 and B3, f32, f16 and bf16, with and without checkpointing, on
// the CPU and the emulated CUDA cards) peaks exactly where the plan says, to the byte; the plan's parts, its auto policy and largest batch are consistent; and the 4 GiB
// targets of issue 3.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/allocator.h"
#include "core/cuda/device_code.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "nn/efficientnet.h"
#include "tests/support/testing.h"
#include "train/memory_plan.h"
#include "train/optimizer.h"

namespace sg::nn {
namespace {

using train::allocator_bytes;
using train::choose_checkpointing;
using train::largest_batch;
using train::MemoryPlan;
using train::MemoryPlanRequest;
using train::optimizer_state_count;
using train::plan_training_step;

TEST(MemoryPlan, RoundsAsTheAllocatorDoes) {
  Allocator& allocator = allocator_for(Device::cpu());
  for (int64_t bytes : {int64_t(1), int64_t(511), int64_t(513), int64_t(100000), int64_t(1 << 20) - 1,
                        int64_t(1 << 20), int64_t(3 << 20) + 5}) {
    const size_t before = allocator.stats().in_use;
    const Tensor t = Tensor::empty({bytes}, DType::u8);
    EXPECT_EQ(allocator.stats().in_use - before, allocator_bytes(size_t(bytes))) << bytes << " bytes";
  }
}

// efficientnet_block_options (nn/efficientnet.h) against the reference's rules, and the plan's
// parameter count (of the model it builds on meta) against a model built on the CPU.
TEST(MemoryPlan, BlockOptionsAndParameterCountsMatchTheModel) {
  for (const char* arch : {"b0", "b3", "lite1"}) {
    EfficientNetConfig config = efficientnet_config(arch);
    config.outputs = 6;
    config.pooling = HeadPooling::gem;
    const EfficientNet model(config);
    const std::vector<MBConvOptions> options = efficientnet_block_options(config);
    ASSERT_EQ(int64_t(options.size()), efficientnet_layout(config).block_count()) << arch;
    int64_t stride_two = 0;
    for (size_t i = 0; i < options.size(); ++i) {
      const MBConvOptions& o = options[i];
      stride_two += o.stride == 2;
      EXPECT_DOUBLE_EQ(o.drop_connect, config.drop_connect * double(i) / double(options.size())) << arch << " " << i;
      EXPECT_EQ(o.se_ratio, config.lite ? 0.0 : 0.25) << arch;
      if (i > 0) {
        EXPECT_EQ(o.in_channels, options[i - 1].out_channels) << arch << " block " << i;
      }
    }
    EXPECT_EQ(stride_two, 4) << arch << ": with the stem, the network downsamples by 32";
    MemoryPlanRequest request;
    request.config = config;
    request.height = request.width = 64;
    EXPECT_EQ(plan_training_step(request).parameters, const_cast<EfficientNet&>(model).parameter_count()) << arch;
  }
}

struct Measured {
  size_t peak = 0;                  // the allocator's peak during the step
  size_t in_use_after_forward = 0;  // what the forward left live (mostly what it saved)
};

// One real training step of `arch` on `device`, in bytes over what was in use there before the
// model existed (the plan counts the model, optimizer and batch too).
Measured measured_step(const CheckpointPolicy& policy, int64_t batch, int64_t image, DType precision,
                       const std::string& arch = "b0", Device device = Device::cpu()) {
  testing::Rng rng;
  Allocator& allocator = allocator_for(device);
  const size_t base = allocator.stats().in_use;
  EfficientNetConfig config = efficientnet_config(arch);
  config.outputs = 6;
  EfficientNet model(config, device);
  model.set_training(true);
  model.set_checkpointing(policy);
  model.set_precision(precision);
  train::AdamW optimizer(model.parameters(), train::AdamWOptions{});

  allocator.reset_peak();
  Measured measured;
  train::TrainerStepHooks hooks;
  // Random pixels and valid labels, written in place on the CPU (a host copy would count there).
  hooks.fill = [&](Tensor& pixels, Tensor& labels) {
    Tensor host_pixels = device.is_cpu() ? pixels : Tensor::empty(pixels.shape(), DType::u8);
    Tensor host_labels = device.is_cpu() ? labels : Tensor::empty(labels.shape(), DType::i32);
    for (int64_t i = 0; i < host_pixels.numel(); ++i) host_pixels.data_as<uint8_t>()[i] = uint8_t(rng.integer(0, 255));
    for (int64_t i = 0; i < batch; ++i) host_labels.data_as<int32_t>()[i] = int32_t(i % 6);
    if (!device.is_cpu()) {
      pixels.copy_from(host_pixels);
      labels.copy_from(host_labels);
    }
  };
  hooks.after_forward = [&] { measured.in_use_after_forward = allocator.stats().in_use - base; };
  const train::StepResult result = train::run_trainer_step(model, optimizer, batch, image, image, hooks);
  EXPECT_TRUE(result.completed && std::isfinite(result.loss));
  measured.peak = allocator.stats().peak_in_use - base;
  return measured;
}

MemoryPlanRequest b0_request(const CheckpointPolicy& policy, int64_t batch, int64_t image, DType precision,
                             const std::string& arch = "b0", Device device = Device::cpu()) {
  MemoryPlanRequest request;
  request.config = efficientnet_config(arch);
  request.config.outputs = 6;
  request.batch = batch;
  request.height = request.width = image;
  request.activations = precision;
  request.optimizer_states = optimizer_state_count("adamw");
  request.checkpointing = policy;
  request.cuda = device.is_cuda();
  if (device.is_cuda()) request.cuda_arch = cuda::code_architecture(device.index);
  request.cublas_workspace_held = cublas_workspace_bytes_held(device) > 0;
  return request;
}

// The issue asks for 10%; the plan runs the same code on the meta device and is exact, in f32, f16
// and bf16, on the CPU and on the emulated cards, so the test holds it to the byte, on the peak and
// on what the forward leaves live: a kernel whose meta branch forgets or adds scratch, or a meta
// allocator that counts otherwise than the real one, fails it.
void expect_plan_matches_step(const CheckpointPolicy& policy, DType precision = DType::f32,
                              const std::string& arch = "b0", Device device = Device::cpu(), int64_t image = 96) {
  const int64_t batch = 2;
  const MemoryPlan plan = plan_training_step(b0_request(policy, batch, image, precision, arch, device));
  const Measured measured = measured_step(policy, batch, image, precision, arch, device);
  auto error = [](size_t predicted, size_t actual) { return (double(predicted) - double(actual)) / double(actual); };
  const double peak_error = error(plan.peak, measured.peak);
  const double forward_error = error(plan.in_use_after_forward, measured.in_use_after_forward);
  EXPECT_EQ(plan.peak, measured.peak) << policy.str() << ": plan " << format_bytes(plan.peak) << " (at "
                                      << plan.peak_at << "), measured " << format_bytes(measured.peak);
  EXPECT_EQ(plan.in_use_after_forward, measured.in_use_after_forward)
      << policy.str() << ": after forward, plan " << format_bytes(plan.in_use_after_forward) << ", measured "
      << format_bytes(measured.in_use_after_forward);
  EXPECT_EQ(plan.at_peak.total(), plan.peak);
  std::printf("[ plan ] %s %s %s on %s: peak plan %zu, measured %zu bytes (%+.2f%%); after forward %+.2f%%\n",
              arch.c_str(), policy.str().c_str(), std::string(dtype_name(precision)).c_str(), device.str().c_str(),
              plan.peak, measured.peak, 100.0 * peak_error, 100.0 * forward_error);
}

TEST(MemoryPlan, RealCpuStepWithoutCheckpointingPeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::none());
}
TEST(MemoryPlan, RealCpuStepWithCheckpointingPeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::every_block());
}
TEST(MemoryPlan, RealCpuStepWithEverySecondBlockPeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::every_kth_block(2));
}
// Mixed precision: f16/bf16 activations and compute copies of the weights, f32 master weights,
// gradients and optimizer state (nn/precision.h).
TEST(MemoryPlan, RealCpuStepInF16PeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::none(), DType::f16);
  expect_plan_matches_step(CheckpointPolicy::every_block(), DType::f16);
}
TEST(MemoryPlan, RealCpuStepInBf16WithEverySecondBlockPeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::every_kth_block(2), DType::bf16);
}
// A deeper, wider network (other block counts, SE widths and kernel mixes than B0).
TEST(MemoryPlan, RealCpuB3StepPeakMatchesThePlan) {
  expect_plan_matches_step(CheckpointPolicy::none(), DType::f32, "b3", Device::cpu(), 64);
  expect_plan_matches_step(CheckpointPolicy::every_block(), DType::f16, "b3", Device::cpu(), 64);
}
// On the CUDA device (the emulated one in the test build): the CUDA kernels' scratch (the
// convolution's split weight gradient, the channel reductions' partials, cuBLAS) for the card's
// code architecture.
TEST(MemoryPlan, RealCudaStepPeakMatchesThePlan) {
  SG_REQUIRE_CUDA();
  const int64_t image = testing::on_emulated_cuda() ? 32 : 96;
  expect_plan_matches_step(CheckpointPolicy::none(), DType::f32, "b0", Device::cuda(0), image);
  expect_plan_matches_step(CheckpointPolicy::every_block(), DType::f16, "b0", Device::cuda(0), image);
}

TEST(MemoryPlan, AutoPolicyAndLargestBatchAreConsistent) {
  MemoryPlanRequest request = b0_request(CheckpointPolicy::none(), 4, 256, DType::f32);
  request.cuda = true;
  const size_t none = plan_training_step(request).peak;
  request.checkpointing = CheckpointPolicy::every_block();
  const size_t every = plan_training_step(request).peak;
  ASSERT_LT(every, none);

  EXPECT_EQ(choose_checkpointing(request, none)->kind, CheckpointPolicy::Kind::none);
  EXPECT_FALSE(choose_checkpointing(request, every - 1).has_value());
  const size_t middle = (none + every) / 2;
  const std::optional<CheckpointPolicy> chosen = choose_checkpointing(request, middle);
  ASSERT_TRUE(chosen.has_value());
  EXPECT_NE(chosen->kind, CheckpointPolicy::Kind::none);
  request.checkpointing = *chosen;
  const MemoryPlan plan = plan_training_step(request);
  EXPECT_LE(plan.peak, middle);
  int64_t checkpointed = 0;
  for (bool c : plan.checkpointed) checkpointed += c;
  EXPECT_LT(checkpointed, int64_t(plan.checkpointed.size())) << "auto should recompute less than every block here";

  const size_t budget = size_t(1) << 30;
  request.checkpointing = CheckpointPolicy::every_block();
  const int64_t largest = largest_batch(request, budget);
  ASSERT_GT(largest, 0);
  request.batch = largest;
  EXPECT_LE(plan_training_step(request).peak, budget);
  request.batch = largest + 1;
  EXPECT_GT(plan_training_step(request).peak, budget);
}

TEST(MemoryPlan, TargetsFitFourGibInF16WithCheckpointing) {
  for (const auto& [arch, batch] : {std::pair{"b0", 6}, std::pair{"b1", 4}}) {
    MemoryPlanRequest request;
    request.config = efficientnet_config(arch);
    request.config.outputs = 6;
    request.batch = batch;
    request.height = request.width = 1536;
    request.activations = DType::f16;
    request.checkpointing = CheckpointPolicy::every_block();
    const size_t budget = parse_bytes("4GiB");
    const MemoryPlan plan = plan_training_step(request);
    EXPECT_LE(plan.peak, budget) << arch << " batch " << batch << ": " << format_bytes(plan.peak);
    request.checkpointing = CheckpointPolicy::none();
    EXPECT_GT(plan_training_step(request).peak, budget) << arch << ": fits without checkpointing too?";
  }
}

TEST(MemoryPlan, BadRequestsAreNamed) {
  MemoryPlanRequest request;
  request.batch = 0;
  EXPECT_THROW(plan_training_step(request), Error);
  request.batch = 1;
  request.height = 16;
  EXPECT_THROW(plan_training_step(request), Error);
  request.height = 64;
  request.checkpointing = CheckpointPolicy::automatic();
  EXPECT_THROW(plan_training_step(request), Error);
  EXPECT_THROW(optimizer_state_count("lamb"), Error);
}

}  // namespace
}  // namespace sg::nn
