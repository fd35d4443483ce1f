#pragma once
// Conv2d: NHWC input, OHWI weight [Cout, k, k, Cin / groups], optional bias, padding resolved per
// input size (TF-SAME depends on it).
#include "kernels/conv2d_params.h"
#include "nn/module.h"
#include "nn/precision.h"

namespace sg::nn {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel = 1, stride = 1, groups = 1;
  Padding padding = Padding::symmetric;
  bool bias = false;
};

class Conv2d final : public Module {
 public:
  // Weights: Normal(0, sqrt(2 / fan_out)) (torchvision's kaiming_normal_, mode fan_out), bias 0.
  Conv2d(std::string name, const Conv2dOptions& options, Device device, uint64_t seed);

  Tensor forward(Context& ctx, const Tensor& x) override;
  // Returns an undefined tensor when input gradients are switched off (the stem).
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;

  Conv2dParams params_for(const Shape& input) const;
  const Conv2dOptions& options() const { return options_; }
  Parameter& weight() { return weight_; }
  Parameter* bias() { return options_.bias ? &bias_ : nullptr; }  // null without bias
  // The first layer needs no input gradient.
  void set_input_grad(bool enabled) { input_grad_ = enabled; }

 protected:
  void own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) override;

 private:
  struct Saved {
    Tensor x;  // the input, for the weight gradient (and its shape for dx)
    std::vector<const Tensor*> tensors() const { return {&x}; }
  };
  Conv2dOptions options_;
  Parameter weight_;
  Parameter bias_;  // undefined value without bias
  bool input_grad_ = true;
};

// The weight in the activations' dtype: compute_weight() in nn/precision.h.

}  // namespace sg::nn
