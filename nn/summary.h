#pragma once
// A model summary: every leaf layer with its output shape, parameters and FLOPs, then totals.
// FLOPs are 2 x the multiply-accumulates of convolutions, SE and linear layers (BN, activations,
// pooling and adds are not counted, as in timm's and torchvision's published GMAC figures).
#include <string>
#include <vector>

#include "nn/module.h"

namespace sg::nn {

struct Summary {
  std::vector<LayerInfo> layers;
  Shape output;
  int64_t parameters = 0;  // sum over the layers
  int64_t macs = 0;
  int64_t flops() const { return 2 * macs; }
};

Summary summarize(const Module& model, const Shape& input);
// A fixed-width table; `title` heads it.
std::string format_summary(const Summary& summary, const std::string& title);

}  // namespace sg::nn
