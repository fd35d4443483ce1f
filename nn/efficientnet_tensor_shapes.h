#pragma once
// Every parameter and buffer an EfficientNet built from a config would hold (name and shape, in
// the module order of named_tensors), computed from the layout alone: no tensor is allocated, so
// a caller can compare a file against all thirteen archs (B7 alone holds 66M values) at once.
// Importers use it to infer the arch from a file's shapes (weights/keras_import.h);
// tests/nn/test_efficientnet_tensor_shapes.cpp checks it against the built model for every arch.
#include <string>
#include <vector>

#include "core/shape.h"
#include "nn/efficientnet.h"

namespace sg::nn {

struct TensorShapeEntry {
  std::string name;  // timm's name, as the model's ("blocks.1.0.conv_dw.weight")
  Shape shape;       // our layout (conv OHWI, depthwise [C, k, k, 1], linear [out, in])
};
std::vector<TensorShapeEntry> efficientnet_tensor_shapes(const EfficientNetConfig& config);

}  // namespace sg::nn
