#include "nn/mbconv.h"

#include "kernels/dropout.h"
#include "kernels/tensor_ops.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

MBConv::MBConv(std::string name, const MBConvOptions& options, Device device, uint64_t seed)
    : Module(std::move(name)), options_(options) {
  const auto& o = options_;
  SG_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.expand_ratio >= 1 && o.stride >= 1 && o.kernel >= 1,
           "'", this->name(), "': invalid block ", o.in_channels, " -> ", o.out_channels, " expand ", o.expand_ratio,
           " kernel ", o.kernel, " stride ", o.stride);
  SG_CHECK(o.drop_connect >= 0 && o.drop_connect < 1, "'", this->name(), "': drop-connect rate ", o.drop_connect,
           " must be in [0, 1)");
  residual_ = o.stride == 1 && o.in_channels == o.out_channels;
  const int64_t hidden = hidden_channels();
  const bool expand = o.expand_ratio != 1;
  // timm's names: with expansion conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3; without conv_dw/bn1, conv_pw/bn2.
  if (expand) {
    expand_conv_ = std::make_unique<Conv2d>(child_name("conv_pw"),
                                            Conv2dOptions{o.in_channels, hidden, 1, 1, 1, o.padding, false}, device, seed);
    expand_bn_ = std::make_unique<BatchNorm2d>(child_name("bn1"), hidden, o.bn_eps, o.bn_momentum, o.activation, device);
  }
  depthwise_conv_ = std::make_unique<Conv2d>(
      child_name("conv_dw"), Conv2dOptions{hidden, hidden, o.kernel, o.stride, hidden, o.padding, false}, device, seed);
  depthwise_bn_ = std::make_unique<BatchNorm2d>(child_name(expand ? "bn2" : "bn1"), hidden, o.bn_eps, o.bn_momentum,
                                                o.activation, device);
  if (o.se_ratio > 0) {
    const auto reduced = std::max<int64_t>(1, int64_t(double(o.in_channels) * o.se_ratio));
    se_ = std::make_unique<SqueezeExcite>(child_name("se"), hidden, reduced, o.activation, device, seed);
  }
  project_conv_ = std::make_unique<Conv2d>(child_name(expand ? "conv_pwl" : "conv_pw"),
                                           Conv2dOptions{hidden, o.out_channels, 1, 1, 1, o.padding, false}, device, seed);
  project_bn_ = std::make_unique<BatchNorm2d>(child_name(expand ? "bn3" : "bn2"), o.out_channels, o.bn_eps,
                                              o.bn_momentum, math::Activation::identity, device);
}

std::vector<Module*> MBConv::children() {
  // Forward order (the order of parameters() and of a timm state dict).
  std::vector<Module*> out;
  if (expand_conv_) { out.push_back(expand_conv_.get()); out.push_back(expand_bn_.get()); }
  out.push_back(depthwise_conv_.get());
  out.push_back(depthwise_bn_.get());
  if (se_) out.push_back(se_.get());
  out.push_back(project_conv_.get());
  out.push_back(project_bn_.get());
  return out;
}

Shape MBConv::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  check_input(input, options_.in_channels);
  Shape s = input;
  if (expand_conv_) s = expand_bn_->describe(expand_conv_->describe(s, layers), layers);
  s = depthwise_bn_->describe(depthwise_conv_->describe(s, layers), layers);
  if (se_) s = se_->describe(s, layers);
  return project_bn_->describe(project_conv_->describe(s, layers), layers);
}

Tensor MBConv::forward(Context& ctx, const Tensor& x) {
  check_input(x.shape(), options_.in_channels);
  Tensor h = x;
  if (expand_conv_) h = expand_bn_->forward(ctx, expand_conv_->forward(ctx, h));
  h = depthwise_bn_->forward(ctx, depthwise_conv_->forward(ctx, h));
  if (se_) h = se_->forward(ctx, h);
  h = project_bn_->forward(ctx, project_conv_->forward(ctx, h));
  Saved saved;
  if (residual_) {
    // h is this block's own fresh tensor and nothing saved it (BN keeps its input): in place.
    if (training() && options_.drop_connect > 0) {
      saved.drop_connect_drawn = true;
      saved.rng_offset = ctx.next_rng_offset();
      drop_connect_forward(DropoutParams{options_.drop_connect, ctx.seed(), saved.rng_offset}, h, h, ctx.stream());
    }
    add_(h, x, ctx.stream());
    probe_output(ctx, name() + " (residual sum)", h);
  }
  ctx.save(this, std::move(saved));
  return h;
}

Tensor MBConv::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  Tensor dh = dy;
  if (saved.drop_connect_drawn) {
    dh = Tensor::empty(dy.shape(), dy.dtype(), dy.device(), "drop_connect dx");
    drop_connect_backward(DropoutParams{options_.drop_connect, ctx.seed(), saved.rng_offset}, dy, dh, ctx.stream());
  }
  dh = project_conv_->backward(ctx, project_bn_->backward(ctx, dh));
  if (se_) dh = se_->backward(ctx, dh);
  dh = depthwise_conv_->backward(ctx, depthwise_bn_->backward(ctx, dh));
  if (expand_conv_) dh = expand_conv_->backward(ctx, expand_bn_->backward(ctx, dh));
  // The skip path's gradient: dh is a fresh tensor from a conv backward, add in place.
  if (residual_) {
    add_(dh, dy, ctx.stream());
    probe_gradient(ctx, name() + " (residual sum)", "input", dh);
  }
  return dh;
}

std::string MBConv::export_onnx(OnnxGraph& graph, const std::string& x) const {
  // Eval mode: drop-connect is the identity.
  std::string h = x;
  if (expand_conv_) h = expand_bn_->export_onnx(graph, expand_conv_->export_onnx(graph, h));
  h = depthwise_bn_->export_onnx(graph, depthwise_conv_->export_onnx(graph, h));
  if (se_) h = se_->export_onnx(graph, h);
  h = project_bn_->export_onnx(graph, project_conv_->export_onnx(graph, h));
  return residual_ ? graph.node("Add", {h, x}, name()) : h;
}

}  // namespace sg::nn
