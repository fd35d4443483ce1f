#pragma once
// The memory plan of one EfficientNet training step as the trainer takes it (its batches, forward
// with saving, loss, backward, optimizer step), from shapes only: no tensor memory is allocated.
//
// The plan runs the real step on the meta device (core/meta_device.h): run_trainer_step below, so
// train::TrainStep with the real modules, checkpointing policy, precision and optimizer, on
// tensors that have shapes and no values. The meta allocator counts and rounds bytes as the CPU
// and CUDA allocators do, and each kernel's meta branch allocates the scratch its target kernel
// allocates (the CPU's, or a CUDA card's of the given architecture), sized by the function the
// kernel itself uses. So a module or kernel change reaches the plan without any change here.
// Its peak is the allocator's peak_in_use for a fresh model's first step, model, optimizer and
// batch included; the parts say what was live at that moment. tests/train/test_memory_plan.cpp
// runs real steps (CPU and emulated CUDA; f32, f16, bf16) and fails on any byte of difference.
//
// Precision: activations (and their gradients) are stored in `activations` (f32, f16 or bf16);
// parameters, their gradients and the optimizer state are f32; with f16/bf16 activations each
// conv and linear weight also has a persistent copy in that dtype (the compute weights).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace sg::train {

struct MemoryPlanRequest {
  nn::EfficientNetConfig config;
  int64_t batch = 1, height = 224, width = 224;
  DType activations = DType::f32;
  int64_t optimizer_states = 2;  // f32 tensors per parameter: AdamW 2, SGD with momentum 1
  nn::CheckpointPolicy checkpointing;  // resolved: use choose_checkpointing for `automatic`
  bool cuda = true;                // whose kernel scratch to count: the CUDA kernels', else the CPU's
  // The architecture of the code the card runs (core/cuda/runtime.h code_architecture): it picks the
  // kernels, whose scratch differs (tensor-core tiles split the weight gradient differently; no cuBLAS
  // bf16 before sm_70). 61, the GTX 1050 Ti the 4 GiB budgets are for, unless the card is known.
  int cuda_arch = 61;
  // The cuBLAS handle's workspace is taken at a process's first GEMM and kept: a plan of the first
  // step counts it; with `true` (an earlier GEMM took it; kernels/linear.h cublas_workspace_bytes_held)
  // it is already among what the caller holds and the plan leaves it out.
  bool cublas_workspace_held = false;
};

// One training step as the trainer takes it (train/trainer.cpp FoldRun::train_one_epoch), on the
// model's device: the uint8 pixels and i32 labels of this batch and of the next (the trainer uploads
// one batch ahead), the step's targets, the images normalised into the model's precision
// (grading::normalize_mosaics), then TrainStep::micro_batch with cross-entropy and no clipping. The
// plan runs it on meta; tests run the same function on real devices and compare the allocators'
// peaks. (On the CPU the loader's prefetched batches are host memory beyond these two.)
struct TrainerStepHooks {
  std::function<void(Tensor& pixels, Tensor& labels)> fill;  // writes each uploaded batch (nothing to write on meta)
  std::function<void(const Batch& batch)> before_step;        // the step's images and targets
  std::function<void()> after_forward;                         // TrainStepOptions::after_forward
};
StepResult run_trainer_step(nn::EfficientNet& model, Optimizer& optimizer, int64_t batch, int64_t height, int64_t width,
                            const TrainerStepHooks& hooks = {});

// "adamw" -> 2, "sgd" (with momentum) -> 1 (nn/optimizer_kind.h's words); throws naming the text.
int64_t optimizer_state_count(std::string_view optimizer);

// Bytes live at one moment, by what they are.
struct MemoryParts {
  size_t weights = 0;          // f32 parameters and BN running statistics
  size_t compute_weights = 0;  // f16/bf16 copies of the conv and linear weights
  size_t gradients = 0;        // f32 parameter gradients
  size_t optimizer_state = 0;
  // the trainer's batches: the uint8 pixels and labels of this batch and the next, the targets and
  // the normalised images (in the activations' dtype)
  size_t batch = 0;
  size_t saved = 0;            // activations kept for backward (checkpointed block inputs included)
  size_t temporaries = 0;      // activations and gradients in flight, kernel scratch
  size_t workspace = 0;        // CUDA: the cuBLAS handle's workspace, taken at the first GEMM and kept
  size_t total() const {
    return weights + compute_weights + gradients + optimizer_state + batch + saved + temporaries + workspace;
  }
};

struct MemoryPlan {
  size_t peak = 0;          // predicted allocator peak of the step (bytes in use)
  MemoryParts at_peak;      // sums to peak
  // where it falls: the allocation scopes open then, e.g. "backward > blocks.1.0 > recompute"
  std::string peak_at;
  size_t saved_after_forward = 0;  // activations kept for backward when forward ends
  size_t in_use_after_forward = 0; // everything live when forward ends (the logits included)
  int64_t parameters = 0;
  std::vector<bool> checkpointed;  // per block
  int64_t forward_macs = 0;        // one forward of the whole network
  int64_t recomputed_macs = 0;     // extra forward work of the checkpointed blocks
};

// Throws naming the problem for a bad request (unknown sizes, an image too small, `automatic`).
MemoryPlan plan_training_step(const MemoryPlanRequest& request);

// The least recomputation whose plan fits `budget` bytes: none when that fits, else blocks
// added greedily by bytes saved per recomputed MAC. nullopt when even every block does not fit.
std::optional<nn::CheckpointPolicy> choose_checkpointing(const MemoryPlanRequest& request, size_t budget);

// The largest batch (up to max_batch) whose plan fits `budget` with the request's policy
// (`automatic`: the best policy per batch); 0 when batch 1 does not fit.
int64_t largest_batch(const MemoryPlanRequest& request, size_t budget, int64_t max_batch = 1 << 14);

// The allocator's rounding of one request (Allocator::round_size; a test checks it against real allocations).
size_t allocator_bytes(size_t bytes);

}  // namespace sg::train
