// Gradient checkpointing: the policy's text form, and a whole EfficientNet-B0 training step
// with checkpointing every block and every 2nd block against none: every parameter gradient,
// the input gradient and the BN running statistics bit-identical (same seed, dropout and
// drop-connect on), with fewer bytes saved for backward.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "kernels/loss.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"
#include "tests/support/testing.h"

namespace sg::nn {
namespace {

TEST(CheckpointPolicy, ParsesAndPrintsEveryForm) {
  for (const char* text : {"none", "every", "every:2", "every:5", "auto", "blocks:0,3,4"})
    EXPECT_EQ(parse_checkpoint_policy(text).str(), text);
  EXPECT_EQ(parse_checkpoint_policy("all").kind, CheckpointPolicy::Kind::every_block);
  EXPECT_EQ(parse_checkpoint_policy("every:1").kind, CheckpointPolicy::Kind::every_block);
  EXPECT_EQ(parse_checkpoint_policy("3").k, 3);

  EXPECT_EQ(CheckpointPolicy::none().resolve(3), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(CheckpointPolicy::every_block().resolve(3), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(CheckpointPolicy::every_kth_block(2).resolve(5), (std::vector<bool>{true, false, true, false, true}));
  EXPECT_EQ(parse_checkpoint_policy("blocks:1,3").resolve(5), (std::vector<bool>{false, true, false, true, false}));
}

TEST(CheckpointPolicy, BadTextAndUnresolvedAutoAreNamed) {
  for (const char* text : {"", "sometimes", "every:0", "every:x", "blocks:", "blocks:1,,2", "-2"}) {
    try {
      parse_checkpoint_policy(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("checkpoint policy"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(CheckpointPolicy::automatic().resolve(16), Error);
  EXPECT_THROW(parse_checkpoint_policy("blocks:16").resolve(16), Error);
}

struct StepResult {
  std::map<std::string, std::vector<uint32_t>> grads, buffers;
  std::vector<uint32_t> dx;
  size_t saved_bytes_after_forward = 0;
  size_t peak_bytes = 0;  // allocator peak during the step, above what was in use before it
  uint64_t rng_offset_after = 0;
};

std::vector<uint32_t> bits(const Tensor& t) {
  std::vector<uint32_t> out;
  for (float v : t.to_floats()) out.push_back(std::bit_cast<uint32_t>(v));
  return out;
}

// One train-mode step of B0 (dropout 0.2, drop-connect 0.2) on `device`; x is on the CPU.
StepResult training_step(const CheckpointPolicy& policy, Device device, const Tensor& x_cpu, const Tensor& targets_cpu) {
  EfficientNetConfig config = efficientnet_config("b0");
  config.outputs = 5;
  config.seed = 11;
  EfficientNet model(config, device);
  model.set_training(true);
  model.set_input_grad(true);
  model.set_checkpointing(policy);
  const Tensor x = x_cpu.to(device), targets = targets_cpu.to(device);

  StepResult result;
  Allocator& allocator = allocator_for(device);
  const size_t before = allocator.stats().in_use;
  allocator.reset_peak();
  {
    Context ctx(true, /*seed=*/1234, /*rng_offset=*/7);
    const Tensor logits = model.forward(ctx, x);
    result.saved_bytes_after_forward = ctx.saved_bytes();
    Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), device);
    cross_entropy_backward(CrossEntropyParams{}, logits, targets, 1.0f, dlogits);
    const Tensor dx = model.backward(ctx, dlogits);
    EXPECT_EQ(ctx.saved_count(), 0u) << "backward left saved tensors behind (" << policy.str() << ")";
    result.rng_offset_after = ctx.rng_offset();
    result.dx = bits(dx);
  }
  result.peak_bytes = allocator.stats().peak_in_use - before;
  for (Parameter* p : model.parameters()) result.grads[p->name] = bits(p->grad);
  for (Buffer* b : model.buffers()) result.buffers[b->name] = bits(b->value);
  return result;
}

void expect_identical(const StepResult& a, const StepResult& b, const std::string& what) {
  ASSERT_EQ(a.grads.size(), b.grads.size());
  int64_t mismatched = 0;
  for (const auto& [name, grad] : a.grads)
    if (grad != b.grads.at(name)) {
      if (++mismatched <= 5) ADD_FAILURE() << what << ": gradient of '" << name << "' differs";
    }
  EXPECT_EQ(mismatched, 0) << what << ": parameters with different gradients";
  EXPECT_EQ(a.dx, b.dx) << what << ": input gradient differs";
  for (const auto& [name, value] : a.buffers) EXPECT_EQ(value, b.buffers.at(name)) << what << ": buffer " << name;
  EXPECT_EQ(a.rng_offset_after, b.rng_offset_after) << what;
}

void check_checkpointing_is_exact(Device device) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  // 64 px; 32 px on the emulated CUDA device (every thread of every kernel runs on the CPU there).
  const int64_t side = device.is_cuda() && testing::on_emulated_cuda() ? 32 : 64;
  const Tensor x = testing::random_tensor(rng, {2, side, side, 3});
  const Tensor targets = Tensor::from_floats({1, 4}, {2}, DType::i32);

  const StepResult plain = training_step(CheckpointPolicy::none(), device, x, targets);
  const StepResult every = training_step(CheckpointPolicy::every_block(), device, x, targets);
  const StepResult second = training_step(CheckpointPolicy::every_kth_block(2), device, x, targets);

  // The step really trained: gradients are not all zero and the running means moved.
  size_t nonzero = 0;
  for (const auto& [name, grad] : plain.grads)
    for (uint32_t g : grad) nonzero += (g & 0x7fffffffu) != 0;
  EXPECT_GT(nonzero, 1000u);
  EXPECT_NE(plain.buffers.at("bn1.running_mean"), std::vector<uint32_t>(32, 0u));

  expect_identical(plain, every, "every block");
  expect_identical(plain, second, "every 2nd block");

  // Saved for backward after the forward: only block inputs instead of every block's internals.
  EXPECT_LT(every.saved_bytes_after_forward, second.saved_bytes_after_forward);
  EXPECT_LT(second.saved_bytes_after_forward, plain.saved_bytes_after_forward);
  EXPECT_LT(every.saved_bytes_after_forward * 2, plain.saved_bytes_after_forward);
  EXPECT_LT(every.peak_bytes, plain.peak_bytes);
}

TEST(Checkpointing, GradientsBitIdenticalToNoCheckpointingOnCpu) { check_checkpointing_is_exact(Device::cpu()); }

TEST(Checkpointing, GradientsBitIdenticalToNoCheckpointingOnCuda) {
  SG_REQUIRE_CUDA();
  check_checkpointing_is_exact(Device::cuda(0));
}

TEST(Checkpointing, InferenceThroughCheckpointedBlocksIsPlainForward) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNetConfig config = efficientnet_config("b0");
  config.outputs = 3;
  EfficientNet plain(config), checkpointed(config);
  checkpointed.set_checkpointing(CheckpointPolicy::every_block());
  const Tensor x = testing::random_tensor(rng, {1, 32, 32, 3});
  Context a, b;
  EXPECT_EQ(bits(plain.forward(a, x)), bits(checkpointed.forward(b, x)));
  EXPECT_EQ(b.saved_count(), 0u);
  EXPECT_THROW(checkpointed.set_checkpointing(CheckpointPolicy::automatic()), Error);
}

}  // namespace
}  // namespace sg::nn
