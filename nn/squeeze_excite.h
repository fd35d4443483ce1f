#pragma once
// Squeeze-and-excitation: s = sigmoid(W_e act(W_r mean_hw(x) + b_r) + b_e), y = x * s per channel.
// The two 1x1 convolutions run as linear layers on [N, C]; their weights keep the conv layout
// [out, 1, 1, in] and timm's names "<name>.conv_reduce.{weight,bias}", "<name>.conv_expand.{weight,bias}".
#include "kernels/scalar_math.h"
#include "nn/module.h"

namespace sg::nn {

class SqueezeExcite final : public Module {
 public:
  // reduced_channels: int(0.25 * the block's input channels) in EfficientNet.
  SqueezeExcite(std::string name, int64_t channels, int64_t reduced_channels, math::Activation activation,
                Device device, uint64_t seed);

  Tensor forward(Context& ctx, const Tensor& x) override;
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;
  int64_t reduced_channels() const { return reduced_; }

  // The gate s [N, C] of x [N, H, W, C] with the intermediates backward needs; forward applies
  // it, the fused inference path (nn/inference_fusion.h) folds it into the projection instead.
  struct Gate {
    Tensor pooled, z1, a, z2, s;  // mean_hw(x), W_r pooled, act(z1 + b_r), W_e a, sigmoid(z2 + b_e)
  };
  Gate gate(const Tensor& x, const Stream& stream);

 protected:
  void own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) override;

 private:
  struct Saved {
    Tensor x;   // the block's activations, for ds = sum_hw(dy * x)
    Gate gate;  // every intermediate of the gate, for backward through it
    std::vector<const Tensor*> tensors() const {
      return {&x, &gate.pooled, &gate.z1, &gate.a, &gate.z2, &gate.s};
    }
  };
  int64_t channels_, reduced_;
  math::Activation activation_;
  Parameter reduce_weight_, reduce_bias_, expand_weight_, expand_bias_;
};

}  // namespace sg::nn
