#include "nn/squeeze_excite.h"

#include <cmath>

#include "kernels/activation.h"
#include "kernels/bias_activation.h"
#include "kernels/linear.h"
#include "kernels/pooling.h"
#include "kernels/tensor_ops.h"
#include "nn/conv2d.h"
#include "nn/init.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

SqueezeExcite::SqueezeExcite(std::string name, int64_t channels, int64_t reduced_channels,
                             math::Activation activation, Device device, uint64_t seed)
    : Module(std::move(name)), channels_(channels), reduced_(reduced_channels), activation_(activation) {
  SG_CHECK(channels > 0 && reduced_channels > 0, "'", this->name(), "': squeeze-excite ", channels, " -> ",
           reduced_channels, " channels must both be positive");
  // 1x1 convolutions initialised like Conv2d: Normal(0, sqrt(2 / fan_out)), bias 0.
  const std::string rw = child_name("conv_reduce.weight"), ew = child_name("conv_expand.weight");
  reduce_weight_ = make_parameter(
      rw, init_normal({reduced_, 1, 1, channels_}, std::sqrt(2.0 / double(reduced_)), seed, init_stream_id(rw), device),
      false);
  reduce_bias_ = make_parameter(child_name("conv_reduce.bias"), init_constant({reduced_}, 0.0f, device), true);
  expand_weight_ = make_parameter(
      ew, init_normal({channels_, 1, 1, reduced_}, std::sqrt(2.0 / double(channels_)), seed, init_stream_id(ew), device),
      false);
  expand_bias_ = make_parameter(child_name("conv_expand.bias"), init_constant({channels_}, 0.0f, device), true);
}

void SqueezeExcite::own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& /*buffers*/) {
  params.push_back(&reduce_weight_);
  params.push_back(&reduce_bias_);
  params.push_back(&expand_weight_);
  params.push_back(&expand_bias_);
}

Shape SqueezeExcite::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  check_input(input, channels_);
  if (layers) {
    LayerInfo info;
    info.name = name();
    info.kind = detail::concat("SqueezeExcite ", channels_, "->", reduced_, "->", channels_);
    info.output = input;
    info.parameters = 2 * channels_ * reduced_ + channels_ + reduced_;
    info.macs = input[0] * 2 * channels_ * reduced_;
    layers->push_back(std::move(info));
  }
  return input;
}

SqueezeExcite::Gate SqueezeExcite::gate(const Tensor& x, const Stream& stream) {
  describe(x.shape(), nullptr);
  const int64_t n = x.dim(0);
  const Tensor wr = compute_weight(reduce_weight_, x, name(), stream).reshape({reduced_, channels_});
  const Tensor we = compute_weight(expand_weight_, x, name(), stream).reshape({channels_, reduced_});
  Gate g;
  g.pooled = Tensor::empty({n, channels_}, x.dtype(), x.device(), "se pooled");  // [N, C]
  global_avg_pool_forward(x, g.pooled, stream);
  g.z1 = Tensor::empty({n, reduced_}, x.dtype(), x.device(), "se reduce");  // [N, R], before bias
  linear_forward(g.pooled, wr, nullptr, g.z1, stream);
  g.a = Tensor::empty({n, reduced_}, x.dtype(), x.device(), "se act");
  bias_activation_forward(activation_, g.z1, reduce_bias_.value, g.a, stream);
  g.z2 = Tensor::empty({n, channels_}, x.dtype(), x.device(), "se expand");  // [N, C], before bias
  linear_forward(g.a, we, nullptr, g.z2, stream);
  g.s = Tensor::empty({n, channels_}, x.dtype(), x.device(), "se scale");
  bias_activation_forward(math::Activation::sigmoid, g.z2, expand_bias_.value, g.s, stream);
  return g;
}

Tensor SqueezeExcite::forward(Context& ctx, const Tensor& x) {
  const Stream& stream = ctx.stream();
  Gate g = gate(x, stream);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device(), "se output");
  channel_scale_forward(x, g.s, y, stream);
  ctx.save(this, Saved{.x = x, .gate = std::move(g)});
  probe_output(ctx, name(), y);
  return y;
}

Tensor SqueezeExcite::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  const Tensor& x = saved.x;
  const Tensor &pooled = saved.gate.pooled, &z1 = saved.gate.z1, &a = saved.gate.a, &z2 = saved.gate.z2,
               &s = saved.gate.s;
  const Stream& stream = ctx.stream();
  const int64_t n = x.dim(0);
  const Tensor wr = compute_weight(reduce_weight_, x, name(), stream).reshape({reduced_, channels_});
  const Tensor we = compute_weight(expand_weight_, x, name(), stream).reshape({channels_, reduced_});
  const DType dt = dy.dtype();
  const Device dev = dy.device();

  Tensor dx = Tensor::empty(x.shape(), dt, dev, "se dx");
  Tensor ds = Tensor::empty({n, channels_}, dt, dev, "se ds");
  channel_scale_backward(x, s, dy, dx, ds, stream);
  // sigmoid(z2 + b_e)
  Tensor dz2 = Tensor::empty({n, channels_}, dt, dev, "se dz2");
  Tensor dbe = Tensor::empty({channels_}, DType::f32, dev, "se dbias");
  bias_activation_backward(math::Activation::sigmoid, z2, expand_bias_.value, ds, dz2, dbe, stream);
  add_(expand_bias_.grad, dbe, stream);
  Tensor dwe = Tensor::empty({channels_, reduced_}, dt, dev, "se dw");
  linear_backward_weight(a, dz2, dwe, nullptr, stream);
  accumulate_grad(expand_weight_, dwe, stream);
  Tensor da = Tensor::empty({n, reduced_}, dt, dev, "se da");
  linear_backward_input(dz2, we, da, stream);
  // act(z1 + b_r)
  Tensor dz1 = Tensor::empty({n, reduced_}, dt, dev, "se dz1");
  Tensor dbr = Tensor::empty({reduced_}, DType::f32, dev, "se dbias");
  bias_activation_backward(activation_, z1, reduce_bias_.value, da, dz1, dbr, stream);
  add_(reduce_bias_.grad, dbr, stream);
  Tensor dwr = Tensor::empty({reduced_, channels_}, dt, dev, "se dw");
  linear_backward_weight(pooled, dz1, dwr, nullptr, stream);
  accumulate_grad(reduce_weight_, dwr, stream);
  Tensor dpooled = Tensor::empty({n, channels_}, dt, dev, "se dpooled");
  linear_backward_input(dz1, wr, dpooled, stream);
  // The squeeze path's gradient joins the direct one.
  Tensor dx_pool = Tensor::empty(x.shape(), dt, dev, "se dx pool");
  global_avg_pool_backward(dpooled, dx_pool, stream);
  add_(dx, dx_pool, stream);
  // One layer for the probe (as in forward): its parameters from the loss side in, then dx.
  for (Parameter* p : {&expand_bias_, &expand_weight_, &reduce_bias_, &reduce_weight_}) probe_gradient(ctx, name(), *p);
  probe_gradient(ctx, name(), "input", dx);
  return dx;
}

std::string SqueezeExcite::export_onnx(OnnxGraph& graph, const std::string& x) const {
  // timm's form: the two 1x1 convolutions on the pooled [N, C, 1, 1]. Our [out, 1, 1, in] weights
  // have OIHW's element order already.
  const std::string pooled = graph.node("GlobalAveragePool", {x}, child_name("pool"));
  const std::string z1 =
      graph.node("Conv",
                 {pooled, graph.weight(reduce_weight_.name, reduce_weight_.value, {reduced_, channels_, 1, 1}),
                  graph.weight(reduce_bias_.name, reduce_bias_.value, {reduced_})},
                 child_name("conv_reduce"), {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  const std::string a = graph.activation(activation_, z1, child_name("act"));
  const std::string z2 =
      graph.node("Conv",
                 {a, graph.weight(expand_weight_.name, expand_weight_.value, {channels_, reduced_, 1, 1}),
                  graph.weight(expand_bias_.name, expand_bias_.value, {channels_})},
                 child_name("conv_expand"), {{"kernel_shape", std::vector<int64_t>{1, 1}}});
  const std::string s = graph.node("Sigmoid", {z2}, child_name("gate"));
  return graph.node("Mul", {x, s}, name());
}

}  // namespace sg::nn
