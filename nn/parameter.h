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
};

// A non-trainable state tensor saved with the model (BN running mean and variance).
struct Buffer {
  std::string name;
  Tensor value;
};

}  // namespace sg::nn
