#pragma once
// The eval-mode fast path of EfficientNet (kernels/inference_fusion.h). Every conv -> BN (-> act)
// pair runs as one convolution with the BN folded into its weights plus an f32 bias, and in a
// MBConv with squeeze-excite the gate scales the projection's weights instead of the activations
// (pointwise_gated_forward): BN and channel_scale disappear. Only for forwards that keep nothing
// for backward, outside training, without a non-finite probe (inference_fusion_applies).
//
// The folded weights are built lazily, once per set of weights, and cached in FoldedConv. A cache
// entry is stale (and rebuilt at the next forward) when the conv weight's, its bias's, gamma's or
// beta's version or storage changed (the optimizers bump the versions after every step;
// mark_parameters_changed(model) after loading weights in place bumps them all, covering the BN
// running statistics loaded alongside gamma), when the running statistics' storage changed, or
// when the compute dtype changed. The owner drops the whole cache when a training forward moves
// the running statistics (EfficientNet does).
#include <vector>

#include "nn/batch_norm2d.h"
#include "nn/context.h"
#include "nn/conv2d.h"
#include "nn/mbconv.h"
#include "nn/squeeze_excite.h"

namespace sg::nn {

// Whether `module`'s forward may take the fused path under ctx.
bool inference_fusion_applies(const Module& module, const Context& ctx);

// One conv followed by a BN, folded: the weight in the compute dtype (x's), the bias f32 [Cout].
class FoldedConv {
 public:
  // act(bn(conv(x))) with bn's activation; x [N, H, W, Cin] -> [N, Ho, Wo, Cout] in x's dtype.
  Tensor forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Stream& stream);
  // act(bn(conv1x1(x * gate))) for a 1x1 conv: x [N, H, W, Cin], gate [N, Cin] (the SE gate).
  Tensor gated_forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& gate, const Stream& stream);
  bool built() const { return built_; }
  // Bytes of the folded weight and bias held now.
  size_t bytes() const;

 private:
  // What the folded tensors were computed from.
  struct Key {
    uint64_t weight_version = 0, bias_version = 0, gamma_version = 0, beta_version = 0;
    const void* weight = nullptr;
    const void* bias = nullptr;
    const void* gamma = nullptr;
    const void* beta = nullptr;
    const void* running_mean = nullptr;
    const void* running_var = nullptr;
    DType dtype = DType::f32;
    bool operator==(const Key&) const = default;
  };
  void refresh(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Stream& stream);
  Key key_;
  bool built_ = false;
  Tensor weight_;  // conv weight's shape, compute dtype
  Tensor bias_;    // f32 [Cout]
};

// The folded convolutions of one block: expand (unused without expansion), depthwise, project.
struct MBConvFolds {
  FoldedConv expand, depthwise, project;
};
// MBConv::forward in eval mode, fused: expand and depthwise as conv + bias + act, the SE gate,
// then the gated projection, then the residual add.
Tensor fused_mbconv_forward(MBConv& block, MBConvFolds& folds, const Tensor& x, const Stream& stream);

// The folded state of a whole EfficientNet.
struct EfficientNetFolds {
  FoldedConv stem, head;
  std::vector<MBConvFolds> blocks;
  size_t bytes() const;
};

}  // namespace sg::nn
