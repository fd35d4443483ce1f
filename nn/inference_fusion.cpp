#include "nn/inference_fusion.h"

#include "kernels/bias_activation.h"
#include "kernels/cast.h"
#include "kernels/inference_fusion.h"
#include "kernels/linear.h"
#include "kernels/pooling.h"
#include "kernels/tensor_ops.h"
#include "nn/precision.h"

namespace sg::nn {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The conv's bias parameter, or null (EfficientNet's convolutions have none).
Parameter* conv_bias(Conv2d& conv) {
  if (!conv.options().bias) return nullptr;
  for (Parameter* p : conv.parameters())
    if (ends_with(p->name, ".bias") || p->name == "bias") return p;
  throw Error(detail::concat("'", conv.name(), "': conv with bias but no bias parameter"));
}

// The squeeze-excite parameter named "<se>.<suffix>".
Parameter& se_parameter(SqueezeExcite& se, const std::string& suffix) {
  for (Parameter* p : se.parameters())
    if (ends_with(p->name, "." + suffix)) return *p;
  throw Error(detail::concat("'", se.name(), "': no parameter '", suffix, "'"));
}

}  // namespace

bool inference_fusion_applies(const Module& module, const Context& ctx) {
  return !module.training() && !ctx.keep_for_backward() && ctx.non_finite_probe() == nullptr;
}

void FoldedConv::refresh(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Stream& stream) {
  Parameter& w = conv.weight();
  Parameter* b = conv_bias(conv);
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

Tensor squeeze_excite_gate(SqueezeExcite& se, math::Activation activation, const Tensor& x, const Stream& stream) {
  se.describe(x.shape(), nullptr);
  const int64_t n = x.dim(0), channels = x.dim(3), reduced = se.reduced_channels();
  Parameter& reduce_bias = se_parameter(se, "conv_reduce.bias");
  Parameter& expand_bias = se_parameter(se, "conv_expand.bias");
  const Tensor wr = compute_weight(se_parameter(se, "conv_reduce.weight"), x, se.name(), stream).reshape({reduced, channels});
  const Tensor we = compute_weight(se_parameter(se, "conv_expand.weight"), x, se.name(), stream).reshape({channels, reduced});
  Tensor pooled = Tensor::empty({n, channels}, x.dtype(), x.device(), "se pooled");  // [N, C]
  global_avg_pool_forward(x, pooled, stream);
  Tensor z1 = Tensor::empty({n, reduced}, x.dtype(), x.device(), "se reduce");  // [N, R], before bias
  linear_forward(pooled, wr, nullptr, z1, stream);
  Tensor a = Tensor::empty({n, reduced}, x.dtype(), x.device(), "se act");  // act(z1 + b_r)
  bias_activation_forward(activation, z1, reduce_bias.value, a, stream);
  Tensor z2 = Tensor::empty({n, channels}, x.dtype(), x.device(), "se expand");  // [N, C], before bias
  linear_forward(a, we, nullptr, z2, stream);
  Tensor gate = Tensor::empty({n, channels}, x.dtype(), x.device(), "se gate");  // sigmoid(z2 + b_e)
  bias_activation_forward(math::Activation::sigmoid, z2, expand_bias.value, gate, stream);
  return gate;
}

Tensor fused_mbconv_forward(MBConv& block, MBConvFolds& folds, const Tensor& x, const Stream& stream) {
  Tensor h = x;
  if (block.expand_conv()) h = folds.expand.forward(*block.expand_conv(), *block.expand_bn(), h, stream);
  h = folds.depthwise.forward(*block.depthwise_conv(), *block.depthwise_bn(), h, stream);
  Tensor y;
  if (block.squeeze_excite()) {
    const Tensor gate = squeeze_excite_gate(*block.squeeze_excite(), block.options().activation, h, stream);
    y = folds.project.gated_forward(*block.project_conv(), *block.project_bn(), h, gate, stream);
  } else {
    y = folds.project.forward(*block.project_conv(), *block.project_bn(), h, stream);
  }
  // y is this block's own fresh tensor: the residual add in place (no drop-connect in eval).
  if (block.has_residual()) add_(y, x, stream);
  return y;
}

}  // namespace sg::nn
