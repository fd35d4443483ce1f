#pragma once
// Gradient checkpointing of blocks.
//
// A checkpointed block's forward runs with saving off and keeps only its input (and where its
// Philox offsets started); its backward re-runs the block's forward with saving on, from the
// same Philox offset (so drop-connect masks are the same) and with Context::recomputing() set
// (so batch norm does not move its running statistics twice), then runs the block's backward.
// Gradients are bit-identical to those without checkpointing; the price is one more forward of
// each checkpointed block.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nn/module.h"

namespace sg::nn {

// Which blocks to checkpoint. `automatic` is resolved by the memory plan for a budget
// (train/memory_plan.h: choose_checkpointing) into `selected` blocks.
struct CheckpointPolicy {
  enum class Kind { none, every_block, every_kth_block, selected_blocks, automatic };
  Kind kind = Kind::none;
  int64_t k = 1;               // every_kth_block: blocks 0, k, 2k, ...
  std::vector<bool> selected;  // selected_blocks: one flag per block

  static CheckpointPolicy none() { return {}; }
  static CheckpointPolicy every_block() { return {Kind::every_block, 1, {}}; }
  static CheckpointPolicy every_kth_block(int64_t k);
  static CheckpointPolicy blocks(std::vector<bool> selected) { return {Kind::selected_blocks, 1, std::move(selected)}; }
  static CheckpointPolicy automatic() { return {Kind::automatic, 1, {}}; }

  bool is_automatic() const { return kind == Kind::automatic; }
  // One flag per block for a network of `block_count` blocks; throws for `automatic` (resolve it
  // first) and for a selection of another length.
  std::vector<bool> resolve(int64_t block_count) const;
  // "none", "every", "every:3", "blocks:0,1,4", "auto": what parse_checkpoint_policy reads.
  std::string str() const;
};

// "none" | "every" (also "all", "every:1") | "every:K" (also "K") | "blocks:I,J,..." | "auto".
// Throws naming the text and the accepted forms.
CheckpointPolicy parse_checkpoint_policy(std::string_view text);

// The wrappers a network calls instead of block.forward / block.backward for a checkpointed
// block. Without Context::keep_for_backward() the forward is a plain forward.
Tensor checkpointed_forward(Context& ctx, Module& block, const Tensor& x);
Tensor checkpointed_backward(Context& ctx, Module& block, const Tensor& dy);

}  // namespace sg::nn
