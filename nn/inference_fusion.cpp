#include "nn/inference_fusion.h"

#include "kernels/bias_activation.h"
#include "kernels/cast.h"
#include "kernels/inference_fusion.h"
#include "kernels/linear.h"
#include "kernels/pooling.h"
#include "kernels/tensor_ops.h"
#include "nn/precision.h"

namespace sg::nn {

bool inference_fusion_applies(const Module& module, const Context& ctx) {
  return !module.training() && !ctx.keep_for_backward() && ctx.non_finite_probe() == nullptr;
}

void FoldedConv::refresh(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Stream& stream) {
  Parameter& w = conv.weight();
  Parameter* b = conv.bias();
  Key key;
  key.weight_version = w.version;
  key.weight = w.value.data();
  key.bias_version = b ? b->version : 0;
  key.bias = b ? b->value.data() : nullptr;
  key.gamma_version = bn.gamma().version;
  key.gamma = bn.gamma().value.data();
  key.beta_version = bn.beta().version;
  key.beta = bn.beta().value.data();
  key.running_mean = bn.running_mean().value.data();
  key.running_var = bn.running_var().value.data();
  key.dtype = x.dtype();
  if (built_ && key == key_) return;
  SG_CHECK(x.device() == w.value.device(), "'", conv.name(), "': input on ", x.device().str(), " but weights on ",
           w.value.device().str());
  // Fold from the f32 masters (in double inside the kernel), then cast the weight to the compute
  // dtype once: f16/bf16 round the folded weight once, not the weight and then the BN.
  const int64_t out_channels = w.value.dim(0);
  Tensor folded = Tensor::empty(w.value.shape(), DType::f32, w.value.device(), "folded conv weight");
  bias_ = Tensor::empty({out_channels}, DType::f32, w.value.device(), "folded conv bias");
  fold_batch_norm_into_conv(w.value, b ? &b->value : nullptr, bn.gamma().value, bn.beta().value,
                            bn.running_mean().value, bn.running_var().value, bn.params().eps, folded, bias_);
  if (x.dtype() == DType::f32) {
    weight_ = std::move(folded);
  } else {
    weight_ = Tensor::empty(w.value.shape(), x.dtype(), w.value.device(), "folded conv weight (compute)");
    cast(folded, weight_, stream);
  }
  key_ = key;
  built_ = true;
}

Tensor FoldedConv::forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Stream& stream) {
  refresh(conv, bn, x, stream);
  const Shape out = conv.describe(x.shape(), nullptr);
  Tensor y = Tensor::empty(out, x.dtype(), x.device(), "fused conv output");
  conv2d_bias_activation_forward(conv.params_for(x.shape()), x, weight_, &bias_, bn.params().activation, y, stream);
  return y;
}

Tensor FoldedConv::gated_forward(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& gate,
                                 const Stream& stream) {
  refresh(conv, bn, x, stream);
  const Shape out = conv.describe(x.shape(), nullptr);
  SG_CHECK(out[1] == x.dim(1) && out[2] == x.dim(2), "'", conv.name(), "': gated projection must be 1x1 stride 1, ",
           x.shape().str(), " -> ", out.str());
  Tensor y = Tensor::empty(out, x.dtype(), x.device(), "fused gated projection output");
  pointwise_gated_forward(x, gate, weight_, &bias_, bn.params().activation, y, stream);
  return y;
}

size_t FoldedConv::bytes() const {
  return (weight_.defined() ? weight_.nbytes() : 0) + (bias_.defined() ? bias_.nbytes() : 0);
}

size_t EfficientNetFolds::bytes() const {
  size_t total = stem.bytes() + head.bytes();
  for (const MBConvFolds& b : blocks) total += b.expand.bytes() + b.depthwise.bytes() + b.project.bytes();
  return total;
}

Tensor fused_mbconv_forward(MBConv& block, MBConvFolds& folds, const Tensor& x, const Stream& stream) {
  Tensor h = x;
  if (block.expand_conv()) h = folds.expand.forward(*block.expand_conv(), *block.expand_bn(), h, stream);
  h = folds.depthwise.forward(*block.depthwise_conv(), *block.depthwise_bn(), h, stream);
  Tensor y;
  if (block.squeeze_excite()) {
    const Tensor gate = block.squeeze_excite()->gate(h, stream).s;
    y = folds.project.gated_forward(*block.project_conv(), *block.project_bn(), h, gate, stream);
  } else {
    y = folds.project.forward(*block.project_conv(), *block.project_bn(), h, stream);
  }
  // y is this block's own fresh tensor: the residual add in place (no drop-connect in eval).
  if (block.has_residual()) add_(y, x, stream);
  return y;
}

}  // namespace sg::nn
