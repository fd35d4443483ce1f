#include "nn/activation.h"

#include "kernels/activation.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

Shape Activation::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  if (layers) layers->push_back(LayerInfo{name(), "Activation " + std::string(activation_name(kind_)), input, 0, 0});
  return input;
}

Tensor Activation::forward(Context& ctx, const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device(), "activation output");
  activation_forward(kind_, x, y, ctx.stream());
  ctx.save(this, Saved{.x = kind_ != math::Activation::identity ? x : Tensor()});
  probe_output(ctx, name(), y);
  return y;
}

Tensor Activation::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  if (kind_ == math::Activation::identity) return dy;
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device(), "activation dx");
  activation_backward(kind_, saved.x, dy, dx, ctx.stream());
  probe_gradient(ctx, name(), "input", dx);
  return dx;
}

std::string Activation::export_onnx(OnnxGraph& graph, const std::string& x) const {
  return graph.activation(kind_, x, name());
}

}  // namespace sg::nn
