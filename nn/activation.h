#pragma once
// A standalone pointwise activation (where it is not fused into BatchNorm2d). y = f(x).
#include "kernels/scalar_math.h"
#include "nn/module.h"

namespace sg::nn {

class Activation final : public Module {
 public:
  Activation(std::string name, math::Activation kind) : Module(std::move(name)), kind_(kind) {}
  Tensor forward(Context& ctx, const Tensor& x) override;
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;
  math::Activation kind() const { return kind_; }

 private:
  struct Saved {
    Tensor x;  // the input f'(x) needs; undefined for identity
    std::vector<const Tensor*> tensors() const { return {&x}; }
  };
  math::Activation kind_;
};

}  // namespace sg::nn
