#pragma once
// The EfficientNet block. With expansion (timm InvertedResidual):
//   conv_pw 1x1 -> bn1+act -> conv_dw kxk/s -> bn2+act -> se -> conv_pwl 1x1 -> bn3
// without (expand ratio 1, timm DepthwiseSeparableConv, the first stage):
//   conv_dw kxk/s -> bn1+act -> se -> conv_pw 1x1 -> bn2
// then, when stride 1 and in == out: drop-connect (training) and the residual add.
#include <memory>

#include "kernels/conv2d_params.h"
#include "kernels/scalar_math.h"
#include "nn/batch_norm2d.h"
#include "nn/conv2d.h"
#include "nn/squeeze_excite.h"

namespace sg::nn {

struct MBConvOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel = 3, stride = 1, expand_ratio = 1;
  double se_ratio = 0.25;  // of the block's INPUT channels; 0 = no SE (Lite)
  double drop_connect = 0.0;
  math::Activation activation = math::Activation::swish;
  Padding padding = Padding::symmetric;
  double bn_eps = 1e-5, bn_momentum = 0.1;
};

class MBConv final : public Module {
 public:
  MBConv(std::string name, const MBConvOptions& options, Device device, uint64_t seed);

  Tensor forward(Context& ctx, const Tensor& x) override;
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;

  const MBConvOptions& options() const { return options_; }
  bool has_residual() const { return residual_; }
  int64_t hidden_channels() const { return options_.in_channels * options_.expand_ratio; }
  // The layers, for the eval-mode fused forward (nn/inference_fusion.h); expand and SE may be null.
  Conv2d* expand_conv() { return expand_conv_.get(); }
  BatchNorm2d* expand_bn() { return expand_bn_.get(); }
  Conv2d* depthwise_conv() { return depthwise_conv_.get(); }
  BatchNorm2d* depthwise_bn() { return depthwise_bn_.get(); }
  SqueezeExcite* squeeze_excite() { return se_.get(); }
  Conv2d* project_conv() { return project_conv_.get(); }
  BatchNorm2d* project_bn() { return project_bn_.get(); }

 protected:
  std::vector<Module*> children() override;

 private:
  // The block keeps no tensor itself (its layers keep theirs): only whether drop-connect drew a
  // mask and where, so backward draws the same one.
  struct Saved {
    bool drop_connect_drawn = false;
    uint64_t rng_offset = 0;
    std::vector<const Tensor*> tensors() const { return {}; }
  };
  MBConvOptions options_;
  bool residual_ = false;
  // Expansion (absent for expand ratio 1).
  std::unique_ptr<Conv2d> expand_conv_;
  std::unique_ptr<BatchNorm2d> expand_bn_;
  std::unique_ptr<Conv2d> depthwise_conv_;
  std::unique_ptr<BatchNorm2d> depthwise_bn_;
  std::unique_ptr<SqueezeExcite> se_;  // absent in Lite
  std::unique_ptr<Conv2d> project_conv_;
  std::unique_ptr<BatchNorm2d> project_bn_;
};

}  // namespace sg::nn
