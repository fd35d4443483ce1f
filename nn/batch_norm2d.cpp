#include "nn/batch_norm2d.h"

#include "kernels/activation.h"
#include "kernels/tensor_ops.h"
#include "nn/init.h"
#include "nn/non_finite_probe.h"
#include "nn/onnx_graph.h"

namespace sg::nn {

BatchNorm2d::BatchNorm2d(std::string name, int64_t channels, double eps, double momentum,
                         math::Activation activation, Device device)
    : Module(std::move(name)), channels_(channels) {
  SG_CHECK(channels > 0, "'", this->name(), "': channels must be positive, got ", channels);
  SG_CHECK(eps > 0 && momentum >= 0 && momentum <= 1, "'", this->name(), "': eps ", eps, " must be positive and ",
           "momentum ", momentum, " in [0, 1] (PyTorch's convention: Keras 0.99 is 0.01)");
  params_.eps = eps;
  params_.momentum = momentum;
  params_.activation = activation;
  gamma_ = make_parameter(child_name("weight"), init_constant({channels}, 1.0f, device), true);
  beta_ = make_parameter(child_name("bias"), init_constant({channels}, 0.0f, device), true);
  running_mean_ = Buffer{child_name("running_mean"), init_constant({channels}, 0.0f, device)};
  running_var_ = Buffer{child_name("running_var"), init_constant({channels}, 1.0f, device)};
}

void BatchNorm2d::own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) {
  params.push_back(&gamma_);
  params.push_back(&beta_);
  buffers.push_back(&running_mean_);
  buffers.push_back(&running_var_);
}

Shape BatchNorm2d::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  check_input(input, channels_);
  if (layers) {
    LayerInfo info;
    info.name = name();
    info.kind = params_.activation == math::Activation::identity
                    ? std::string("BatchNorm2d")
                    : "BatchNorm2d+" + std::string(activation_name(params_.activation));
    info.output = input;
    info.parameters = 2 * channels_;
    layers->push_back(std::move(info));
  }
  return input;
}

Tensor BatchNorm2d::forward(Context& ctx, const Tensor& x) {
  describe(x.shape(), nullptr);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device(), "batch_norm output");
  if (training()) {
    SG_CHECK(x.numel() / channels_ >= 2, "'", name(), "': training needs at least 2 values per channel, input ",
             x.shape().str(), " (batch 1 at 1x1)");
    Tensor mean = Tensor::empty({channels_}, DType::f32, x.device(), "batch_norm mean");
    Tensor invstd = Tensor::empty({channels_}, DType::f32, x.device(), "batch_norm invstd");
    if (ctx.recomputing()) {
      // A checkpointed block's second forward: the first pass already moved the running
      // statistics; this one updates throw-away copies ([C] f32 each). y, mean and invstd depend
      // on the batch only, so they equal the first pass's bit for bit.
      Tensor mean_copy = Tensor::empty({channels_}, DType::f32, x.device(), "batch_norm running_mean (recompute)");
      Tensor var_copy = Tensor::empty({channels_}, DType::f32, x.device(), "batch_norm running_var (recompute)");
      mean_copy.copy_from(running_mean_.value, ctx.stream());
      var_copy.copy_from(running_var_.value, ctx.stream());
      batch_norm_forward_train(params_, x, gamma_.value, beta_.value, mean_copy, var_copy, y, mean, invstd,
                               ctx.stream());
    } else {
      batch_norm_forward_train(params_, x, gamma_.value, beta_.value, running_mean_.value, running_var_.value, y,
                               mean, invstd, ctx.stream());
    }
    ctx.save(this, Saved{.x = x, .batch_statistics = true, .batch_mean = mean, .batch_invstd = invstd});
  } else {
    batch_norm_forward_eval(params_, x, gamma_.value, beta_.value, running_mean_.value, running_var_.value, y,
                            ctx.stream());
    ctx.save(this, Saved{.x = x, .batch_statistics = false, .batch_mean = {}, .batch_invstd = {}});
  }
  probe_output(ctx, name(), y);
  return y;
}

Tensor BatchNorm2d::backward(Context& ctx, const Tensor& dy) {
  const Saved saved = ctx.take<Saved>(this, name());
  const Tensor& x = saved.x;
  const Stream& stream = ctx.stream();
  Tensor dx = Tensor::empty(x.shape(), dy.dtype(), dy.device(), "batch_norm dx");
  Tensor dgamma = Tensor::empty({channels_}, DType::f32, dy.device(), "batch_norm dgamma");
  Tensor dbeta = Tensor::empty({channels_}, DType::f32, dy.device(), "batch_norm dbeta");
  if (saved.batch_statistics)
    batch_norm_backward(params_, x, dy, gamma_.value, beta_.value, saved.batch_mean, saved.batch_invstd, dx, dgamma,
                        dbeta, stream);
  else
    batch_norm_backward_eval(params_, x, dy, gamma_.value, beta_.value, running_mean_.value, running_var_.value, dx,
                             dgamma, dbeta, stream);
  add_(gamma_.grad, dgamma, stream);
  add_(beta_.grad, dbeta, stream);
  probe_gradient(ctx, name(), gamma_);
  probe_gradient(ctx, name(), beta_);
  probe_gradient(ctx, name(), "input", dx);
  return dx;
}

std::string BatchNorm2d::export_onnx(OnnxGraph& graph, const std::string& x) const {
  // Eval mode: the running statistics. Kept as BatchNormalization (not folded into the convolution
  // before it) so the file holds exactly the trained tensors; runtimes fold it themselves.
  const std::string y = graph.node(
      "BatchNormalization",
      {x, graph.weight(gamma_.name, gamma_.value, {channels_}), graph.weight(beta_.name, beta_.value, {channels_}),
       graph.weight(running_mean_.name, running_mean_.value, {channels_}),
       graph.weight(running_var_.name, running_var_.value, {channels_})},
      name(), {{"epsilon", float(params_.eps)}});
  return graph.activation(params_.activation, y, name() + "." + std::string(activation_name(params_.activation)));
}

}  // namespace sg::nn
