#pragma once
// What a network exposes to the optimizer, the checkpoint writer and the importers.
#include <string>

#include "core/tensor.h"

namespace sg::nn {

// A trainable tensor with its hierarchical name ("blocks.3.1.dw.weight"). value is the f32
// master copy; grad has value's shape and dtype f32, and backward ADDS into it (so gradient
// accumulation over micro-batches is the default; zero it between optimizer steps).
struct Parameter {
  std::string name;
  Tensor value;
  Tensor grad;
  // BN gamma/beta and biases: optimizers can exempt them from weight decay.
  bool is_bias_or_norm = false;

  // Mixed precision (nn/precision.h). `version` counts in-place changes of value: the
  // optimizers bump it after each update; whoever else writes value in place (loading weights
  // into a model that has already run in f16/bf16, a test planting a NaN) calls mark_changed().
  uint64_t version = 0;
  void mark_changed() { ++version; }
  // The f16/bf16 copy of value that convolutions and linear layers compute with, refreshed
  // when version or value's storage changed. Undefined in f32 and until first used.
  struct ComputeCopy {
    Tensor value;
    uint64_t version = 0;
    const void* master = nullptr;  // value.data() it was cast from
  };
  ComputeCopy compute{};
};

// A non-trainable state tensor saved with the model (BN running mean and variance).
struct Buffer {
  std::string name;
  Tensor value;
};

}  // namespace sg::nn
