#include "nn/conv2d.h"

#include <cmath>

#include "kernels/conv2d.h"
#include "kernels/tensor_ops.h"
#include "nn/init.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

Conv2d::Conv2d(std::string name, const Conv2dOptions& options, Device device, uint64_t seed)
    : Module(std::move(name)), options_(options) {
  const auto& o = options_;
  SG_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.groups > 0 && o.in_channels % o.groups == 0 &&
               o.out_channels % o.groups == 0,
           "'", this->name(), "': ", o.in_channels, " -> ", o.out_channels, " channels in ", o.groups,
           " groups is not a valid convolution");
  const Shape shape{o.out_channels, o.kernel, o.kernel, o.in_channels / o.groups};
  const double fan_out = double(o.out_channels / o.groups * o.kernel * o.kernel);
  const std::string wname = child_name("weight");
  weight_ = make_parameter(wname, init_normal(shape, std::sqrt(2.0 / fan_out), seed, init_stream_id(wname), device),
                           false);
  if (o.bias) bias_ = make_parameter(child_name("bias"), init_constant({o.out_channels}, 0.0f, device), true);
}

void Conv2d::own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& /*buffers*/) {
  params.push_back(&weight_);
  if (options_.bias) params.push_back(&bias_);
}

Conv2dParams Conv2d::params_for(const Shape& input) const {
  check_input(input, options_.in_channels);
  return make_conv2d_params(options_.kernel, options_.kernel, options_.stride, options_.padding, input[1], input[2],
                            options_.groups);
}

Shape Conv2d::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  const Conv2dParams p = params_for(input);
  const int64_t oh = conv2d_output_extent(input[1], p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
  const int64_t ow = conv2d_output_extent(input[2], p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
  SG_CHECK(oh >= 1 && ow >= 1, "'", name(), "': input ", input.str(), " is too small for a ", p.kernel_h, "x",
           p.kernel_w, " kernel");
  const Shape out{input[0], oh, ow, options_.out_channels};
  if (layers) {
    const auto& o = options_;
    LayerInfo info;
    info.name = name();
    info.kind = detail::concat(o.groups == 1 ? "Conv2d " : "DepthwiseConv2d ", o.kernel, "x", o.kernel, "/",
                               o.stride);
    info.output = out;
    info.parameters = weight_.value.numel() + (o.bias ? o.out_channels : 0);
    info.macs = out.numel() * o.kernel * o.kernel * (o.in_channels / o.groups);
    layers->push_back(std::move(info));
  }
  return out;
}

Tensor Conv2d::forward(Context& ctx, const Tensor& x) {
  const Shape out = describe(x.shape(), nullptr);
  const Conv2dParams p = params_for(x.shape());
  const Tensor& w = compute_weight(weight_, x, name(), ctx.stream());
  const Tensor* b = options_.bias ? &compute_weight(bias_, x, name(), ctx.stream()) : nullptr;
  Tensor y = Tensor::empty(out, x.dtype(), x.device(), "conv2d output");
  conv2d_forward(p, x, w, b, y, ctx.stream());
  ctx.save(this, Saved{.x = x});
  probe_output(ctx, name(), y);
  return y;
}

Tensor Conv2d::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  const Tensor& x = saved.x;
  const Conv2dParams p = params_for(x.shape());
  const Stream& stream = ctx.stream();
  const Tensor& w = compute_weight(weight_, x, name(), stream);
  // Kernels overwrite, in the compute dtype; parameter gradients accumulate in f32.
  Tensor dw = Tensor::empty(weight_.value.shape(), dy.dtype(), dy.device(), "conv2d dw");
  Tensor db;
  if (options_.bias) db = Tensor::empty(bias_.value.shape(), dy.dtype(), dy.device(), "conv2d dbias");
  conv2d_backward_weight(p, x, dy, dw, options_.bias ? &db : nullptr, stream);
  accumulate_grad(weight_, dw, stream);
  if (options_.bias) accumulate_grad(bias_, db, stream);
  probe_gradient(ctx, name(), weight_);
  if (options_.bias) probe_gradient(ctx, name(), bias_);
  if (!input_grad_) return {};
  Tensor dx = Tensor::empty(x.shape(), dy.dtype(), dy.device(), "conv2d dx");
  conv2d_backward_input(p, dy, w, dx, stream);
  probe_gradient(ctx, name(), "input", dx);
  return dx;
}

std::string Conv2d::export_onnx(OnnxGraph& graph, const std::string& x) const {
  const Conv2dOptions& o = options_;
  const int64_t k = o.kernel, in_per_group = o.in_channels / o.groups;
  // Our OHWI weight [Cout, k, k, Cin / groups] to ONNX's OIHW [Cout, Cin / groups, k, k].
  const std::vector<float> ohwi = weight_.value.to_floats();
  std::vector<float> oihw(ohwi.size());
  for (int64_t co = 0; co < o.out_channels; ++co)
    for (int64_t ky = 0; ky < k; ++ky)
      for (int64_t kx = 0; kx < k; ++kx)
        for (int64_t ci = 0; ci < in_per_group; ++ci)
          oihw[size_t(((co * in_per_group + ci) * k + ky) * k + kx)] =
              ohwi[size_t(((co * k + ky) * k + kx) * in_per_group + ci)];
  std::vector<std::string> inputs{x, graph.weight(weight_.name, oihw, {o.out_channels, in_per_group, k, k})};
  if (o.bias) inputs.push_back(graph.weight(bias_.name, bias_.value, {o.out_channels}));
  std::vector<OnnxAttribute> attributes{{"kernel_shape", std::vector<int64_t>{k, k}},
                                        {"strides", std::vector<int64_t>{o.stride, o.stride}},
                                        {"group", o.groups}};
  if (o.padding == Padding::symmetric) {
    const int64_t pad = (k - 1) / 2;
    attributes.push_back({"pads", std::vector<int64_t>{pad, pad, pad, pad}});
  } else {
    // TF-SAME resolved per input size (kernels/conv2d_params.h) is ONNX's SAME_UPPER: the odd pixel
    // of padding after. Written as auto_pad, the exported graph takes any input size.
    attributes.push_back({"auto_pad", std::string("SAME_UPPER")});
  }
  return graph.node("Conv", inputs, name(), std::move(attributes));
}

}  // namespace sg::nn
