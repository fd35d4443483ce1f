#pragma once
// BatchNorm2d over NHWC channels with an optional fused activation (BN -> act in one pass).
// Parameters "<name>.weight" (gamma), "<name>.bias" (beta); buffers "<name>.running_mean",
// "<name>.running_var". momentum is PyTorch's convention (Keras 0.99 = PyTorch 0.01).
#include "kernels/batch_norm.h"
#include "nn/module.h"

namespace sg::nn {

class BatchNorm2d final : public Module {
 public:
  BatchNorm2d(std::string name, int64_t channels, double eps, double momentum, math::Activation activation,
              Device device);

  Tensor forward(Context& ctx, const Tensor& x) override;
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;

  const BatchNormParams& params() const { return params_; }
  Parameter& gamma() { return gamma_; }
  Parameter& beta() { return beta_; }
  Buffer& running_mean() { return running_mean_; }
  Buffer& running_var() { return running_var_; }

 protected:
  void own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) override;

 private:
  struct Saved {
    Tensor x;
    // A training forward normalised by the batch's statistics ([C] f32 each) and backward
    // differentiates through them; an eval-mode forward used the running statistics, which its
    // backward reads from the buffers. The forward's mode decides, not the mode at backward.
    bool batch_statistics = false;
    Tensor batch_mean, batch_invstd;
    std::vector<const Tensor*> tensors() const { return {&x, &batch_mean, &batch_invstd}; }
  };
  int64_t channels_;
  BatchNormParams params_;
  Parameter gamma_, beta_;
  Buffer running_mean_, running_var_;
};

}  // namespace sg::nn
