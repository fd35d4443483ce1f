#pragma once
// The memory plan of one EfficientNet training step (forward with saving, loss, backward,
// optimizer step), from shapes only: no tensor is allocated.
//
// The plan replays the step on shape-only tensors whose lifetimes follow the module code line
// by line (each module's forward and backward, what Context::save keeps, the temporaries), and
// counts bytes with the allocator's own rounding (Allocator::round_size). The kernels' scratch
// comes from the functions the kernels size their own scratch with (kernels/cpu/conv2d.h
// conv2d_cpu_workspace, kernels/cuda_channel_reduce_layout.h, kernels/cuda_conv2d_scratch.h), so
// a kernel change reaches the plan through the include. Its peak is the allocator's peak_in_use
// for the step, over what the caller held before it; the parts say what is live at that moment.
// A module change that keeps or allocates something else must still change the replay (running
// the real modules on a shape-only device is the next step): tests/nn/test_memory_plan.cpp
// measures real steps (CPU and emulated CUDA; f32, f16, bf16) and fails on any byte of difference.
//
// Precision: activations (and their gradients) are stored in `activations` (f32, f16 or bf16);
// parameters, their gradients and the optimizer state are f32; with f16/bf16 activations each
// conv and linear weight also has a persistent copy in that dtype (the compute weights).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"

namespace sg::nn {

struct MemoryPlanRequest {
  EfficientNetConfig config;
  int64_t batch = 1, height = 224, width = 224;
  DType activations = DType::f32;
  int64_t optimizer_states = 2;  // f32 tensors per parameter: AdamW 2, SGD with momentum 1
  CheckpointPolicy checkpointing;  // resolved: use choose_checkpointing for `automatic`
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

// "adamw" -> 2, "sgd" (with momentum) -> 1 (nn/optimizer_kind.h's words); throws naming the text.
int64_t optimizer_state_count(std::string_view optimizer);

// Bytes live at one moment, by what they are.
struct MemoryParts {
  size_t weights = 0;          // f32 parameters and BN running statistics
  size_t compute_weights = 0;  // f16/bf16 copies of the conv and linear weights
  size_t gradients = 0;        // f32 parameter gradients
  size_t optimizer_state = 0;
  size_t batch = 0;            // the input images and targets
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
  std::string peak_at;      // where it falls, e.g. "backward of blocks.1.0 (recompute)"
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
std::optional<CheckpointPolicy> choose_checkpointing(const MemoryPlanRequest& request, size_t budget);

// The largest batch (up to max_batch) whose plan fits `budget` with the request's policy
// (`automatic`: the best policy per batch); 0 when batch 1 does not fit.
int64_t largest_batch(const MemoryPlanRequest& request, size_t budget, int64_t max_batch = 1 << 14);

// The allocator's rounding of one request (Allocator::round_size; a test checks it against real allocations).
size_t allocator_bytes(size_t bytes);

}  // namespace sg::nn
