#include "nn/head.h"

#include <array>
#include <cmath>

#include "kernels/dropout.h"
#include "kernels/linear.h"
#include "kernels/pooling.h"
#include "kernels/tensor_ops.h"
#include "nn/conv2d.h"
#include "nn/init.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

HeadPooling parse_head_pooling(std::string_view name) { return parse_word(kHeadPoolingWords, name); }

std::string_view head_pooling_name(HeadPooling pooling) { return word_of(kHeadPoolingWords, pooling); }

Head::Head(std::string name, const HeadOptions& options, Device device, uint64_t seed)
    : Module(std::move(name)), options_(options) {
  SG_CHECK(options.in_channels > 0 && options.outputs > 0, "head: ", options.in_channels, " features -> ",
           options.outputs, " outputs must both be positive");
  SG_CHECK(options.dropout >= 0 && options.dropout < 1, "head: dropout ", options.dropout, " must be in [0, 1)");
  if (options_.pooling == HeadPooling::gem)
    gem_p_ = make_parameter(child_name("global_pool.p"), init_constant({1}, float(options_.gem_p), device), true);
  // torchvision: Uniform(-1/sqrt(outputs), 1/sqrt(outputs)) weights, zero bias.
  const std::string wname = child_name("classifier.weight");
  weight_ = make_parameter(wname,
                           init_uniform({options_.outputs, features()}, 1.0 / std::sqrt(double(options_.outputs)),
                                        seed, init_stream_id(wname), device),
                           false);
  bias_ = make_parameter(child_name("classifier.bias"), init_constant({options_.outputs}, 0.0f, device), true);
}

void Head::own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& /*buffers*/) {
  if (options_.pooling == HeadPooling::gem) params.push_back(&gem_p_);
  params.push_back(&weight_);
  params.push_back(&bias_);
}

Shape Head::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  check_input(input, options_.in_channels);
  const Shape pooled{input[0], features()};
  const Shape out{input[0], options_.outputs};
  if (layers) {
    layers->push_back(LayerInfo{child_name("global_pool"),
                                "GlobalPool " + std::string(head_pooling_name(options_.pooling)), pooled,
                                options_.pooling == HeadPooling::gem ? 1 : 0, 0});
    if (options_.dropout > 0) layers->push_back(LayerInfo{child_name("dropout"),
                                                          detail::concat("Dropout ", options_.dropout), pooled, 0, 0});
    layers->push_back(LayerInfo{child_name("classifier"), "Linear", out,
                                options_.outputs * features() + options_.outputs,
                                input[0] * options_.outputs * features()});
  }
  return out;
}

Tensor Head::forward(Context& ctx, const Tensor& x) {
  describe(x.shape(), nullptr);
  const Stream& stream = ctx.stream();
  const int64_t n = x.dim(0), c = options_.in_channels;
  Saved saved;
  saved.input_shape = x.shape();
  Tensor features_t = Tensor::empty({n, features()}, x.dtype(), x.device(), "head features");  // [N, F]
  Tensor argmax;
  switch (options_.pooling) {
    case HeadPooling::avg: global_avg_pool_forward(x, features_t, stream); break;
    case HeadPooling::max:
      argmax = Tensor::empty({n, c}, DType::i32, x.device(), "head argmax");
      global_max_pool_forward(x, features_t, &argmax, stream);
      break;
    case HeadPooling::gem: gem_pool_forward(x, gem_p_.value, features_t, kGemDefaultEps, stream); break;
    case HeadPooling::avg_max: {
      argmax = Tensor::empty({n, c}, DType::i32, x.device(), "head argmax");
      std::array<Tensor, 2> parts{Tensor::empty({n, c}, x.dtype(), x.device(), "head avg"),
                                  Tensor::empty({n, c}, x.dtype(), x.device(), "head max")};
      global_avg_pool_forward(x, parts[0], stream);
      global_max_pool_forward(x, parts[1], &argmax, stream);
      concat_channels_forward(parts, features_t, stream);
      break;
    }
  }
  if (training() && options_.dropout > 0) {
    saved.dropout_drawn = true;
    saved.rng_offset = ctx.next_rng_offset();
    dropout_forward(DropoutParams{options_.dropout, ctx.seed(), saved.rng_offset}, features_t, features_t, stream);
  }
  probe_output(ctx, child_name("global_pool"), features_t);
  const Tensor& w = compute_weight(weight_, x, name(), stream);
  const Tensor& b = compute_weight(bias_, x, name(), stream);
  Tensor y = Tensor::empty({n, options_.outputs}, x.dtype(), x.device(), "head logits");
  linear_forward(features_t, w, &b, y, stream);
  probe_output(ctx, child_name("classifier"), y);
  saved.features_t = features_t;
  saved.argmax = argmax;
  if (options_.pooling == HeadPooling::gem) saved.gem_input = x;
  ctx.save(this, std::move(saved));
  return y;
}

Tensor Head::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  const Tensor &features_t = saved.features_t, &argmax = saved.argmax, &x = saved.gem_input;
  const Stream& stream = ctx.stream();
  const DType dt = dy.dtype();
  const Device dev = dy.device();
  const int64_t n = saved.input_shape[0], c = options_.in_channels;

  Tensor dw = Tensor::empty(weight_.value.shape(), dt, dev, "head dw");
  Tensor db = Tensor::empty(bias_.value.shape(), dt, dev, "head dbias");
  linear_backward_weight(features_t, dy, dw, &db, stream);
  accumulate_grad(weight_, dw, stream);
  accumulate_grad(bias_, db, stream);
  Tensor dfeatures = Tensor::empty({n, features()}, dt, dev, "head dfeatures");
  linear_backward_input(dy, compute_weight(weight_, dy, name(), stream), dfeatures, stream);
  // The forward probe's two layers: "<head>.classifier" (weight, bias, its input dfeatures) and
  // "<head>.global_pool" (dx, below).
  const std::string classifier = child_name("classifier");
  if (ctx.gradient_hook()) {
    ctx.gradient_hook()(classifier, "weight", weight_.grad);
    ctx.gradient_hook()(classifier, "bias", bias_.grad);
  }
  probe_gradient(ctx, classifier, "input", dfeatures);
  if (saved.dropout_drawn)
    dropout_backward(DropoutParams{options_.dropout, ctx.seed(), saved.rng_offset}, dfeatures, dfeatures, stream);

  Tensor dx = Tensor::empty(saved.input_shape, dt, dev, "head dx");
  switch (options_.pooling) {
    case HeadPooling::avg: global_avg_pool_backward(dfeatures, dx, stream); break;
    case HeadPooling::max: global_max_pool_backward(argmax, dfeatures, dx, stream); break;
    case HeadPooling::gem: {
      Tensor dp = Tensor::empty({1}, DType::f32, dev, "head dp");
      gem_pool_backward(x, gem_p_.value, dfeatures, dx, dp, kGemDefaultEps, stream);
      add_(gem_p_.grad, dp, stream);
      break;
    }
    case HeadPooling::avg_max: {
      std::array<Tensor, 2> parts{Tensor::empty({n, c}, dt, dev, "head davg"), Tensor::empty({n, c}, dt, dev, "head dmax")};
      concat_channels_backward(dfeatures, parts, stream);
      global_avg_pool_backward(parts[0], dx, stream);
      Tensor dx_max = Tensor::empty(saved.input_shape, dt, dev, "head dx max");
      global_max_pool_backward(argmax, parts[1], dx_max, stream);
      add_(dx, dx_max, stream);
      break;
    }
  }
  if (options_.pooling == HeadPooling::gem) probe_gradient(ctx, child_name("global_pool"), gem_p_);
  probe_gradient(ctx, child_name("global_pool"), "input", dx);
  return dx;
}

std::string Head::export_onnx(OnnxGraph& graph, const std::string& x) const {
  // Pooling to [N, F, 1, 1], flattened to [N, F]; eval mode: no dropout; then the classifier.
  const std::string pool_name = child_name("global_pool");
  std::string pooled;
  switch (options_.pooling) {
    case HeadPooling::avg:
      pooled = graph.node("GlobalAveragePool", {x}, pool_name);
      break;
    case HeadPooling::max:
      pooled = graph.node("GlobalMaxPool", {x}, pool_name);
      break;
    case HeadPooling::gem: {
      // (mean_hw clamp(x, eps)^p)^(1/p) (kernels/pooling.h), p the learnable exponent [1].
      const std::string p = graph.weight(gem_p_.name, gem_p_.value, {1});
      const std::string clamped =
          graph.node("Clip", {x, graph.constant(pool_name + ".eps", {kGemDefaultEps}, {})}, pool_name + ".clamp");
      const std::string mean =
          graph.node("GlobalAveragePool", {graph.node("Pow", {clamped, p}, pool_name + ".pow")}, pool_name + ".mean");
      pooled = graph.node("Pow", {mean, graph.node("Reciprocal", {p}, pool_name + ".inverse_p")}, pool_name);
      break;
    }
    case HeadPooling::avg_max:
      // Our concatenation's order: the average's channels, then the maximum's.
      pooled = graph.node("Concat",
                          {graph.node("GlobalAveragePool", {x}, pool_name + ".avg"),
                           graph.node("GlobalMaxPool", {x}, pool_name + ".max")},
                          pool_name, {{"axis", int64_t{1}}});
      break;
  }
  const std::string features_name = graph.node("Flatten", {pooled}, pool_name + ".flatten", {{"axis", int64_t{1}}});
  // weight [outputs, F] is PyTorch's Linear layout: Gemm with transB.
  return graph.node("Gemm",
                    {features_name, graph.weight(weight_.name, weight_.value, {options_.outputs, features()}),
                     graph.weight(bias_.name, bias_.value, {options_.outputs})},
                    child_name("classifier"), {{"transB", int64_t{1}}});
}

}  // namespace sg::nn
