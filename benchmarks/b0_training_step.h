#pragma once
// One EfficientNet-B0 training step written out op by op (stem, 16 MBConv blocks with
// squeeze-excite and residuals, head, cross-entropy, AdamW), on any device and storage dtype.
//
// It is a cost model for the benchmarks, built before the nn/ modules exist (issue 3): every
// op the real network runs, at B0's real shapes, forward and backward, with fused BN+Swish as
// the modules will use it. Drop-connect and dropout are left out (they are a few cheap passes).
#include <vector>

#include "benchmarks/cpu/bench_util.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/inference_fusion.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"
#include "kernels/tensor_ops.h"

namespace sg::bench {

class B0TrainingStep {
 public:
  B0TrainingStep(Device device, DType dtype, int64_t batch, int64_t image) : device_(device), dtype_(dtype) {
    Tensor input = random({batch, image, image, 3}, dtype, 1.0f);
    x0_ = input;
    int64_t size = image, channels = 32;
    stem_ = conv_bn(input.shape(), 3, 32, 3, 2, false, size);
    // B0 stages: kernel, repeats, out channels, expand ratio, stride.
    const int stages[7][5] = {{3, 1, 16, 1, 1},  {3, 2, 24, 6, 2},  {5, 2, 40, 6, 2},  {3, 3, 80, 6, 2},
                              {5, 3, 112, 6, 1}, {5, 4, 192, 6, 2}, {3, 1, 320, 6, 1}};
    for (const auto& st : stages)
      for (int r = 0; r < st[1]; ++r) {
        Block b;
        const int64_t stride = r == 0 ? st[4] : 1, hidden = channels * st[3];
        b.residual = stride == 1 && channels == st[2];
        Shape in{batch, size, size, channels};
        int64_t s = size;
        if (st[3] != 1) b.expand = conv_bn(in, channels, hidden, 1, 1, false, s);
        b.depthwise = conv_bn({batch, s, s, hidden}, hidden, hidden, st[0], stride, true, s);
        const int64_t squeezed = std::max<int64_t>(1, channels / 4);  // SE width from the block's input
        b.se_reduce = linear(hidden, squeezed, batch);
        b.se_expand = linear(squeezed, hidden, batch);
        b.pooled = empty({batch, hidden});
        b.pooled_grad = empty({batch, hidden});
        b.reduce_act = empty({batch, squeezed});
        b.gate = empty({batch, hidden});
        b.gate_grad = empty({batch, hidden});
        b.scaled = empty({batch, s, s, hidden});
        b.scaled_grad = empty({batch, s, s, hidden});
        b.project = conv_bn({batch, s, s, hidden}, hidden, st[2], 1, 1, false, s, math::Activation::identity);
        size = s;
        channels = st[2];
        blocks_.push_back(std::move(b));
      }
    head_ = conv_bn({batch, size, size, channels}, channels, 1280, 1, 1, false, size);
    features_ = empty({batch, 1280});
    features_grad_ = empty({batch, 1280});
    classifier_ = linear(1280, 1000, batch);
    std::vector<float> labels(static_cast<size_t>(batch));
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = float((i * 37) % 1000);
    targets_ = Tensor::from_floats(labels, {batch}, DType::i32).to(device);
    loss_ = Tensor::empty({1}, DType::f32, device);
    collect_parameters();
  }

  void forward() { forward_impl(/*train=*/true); }

  // Inference: batch norm with the running statistics (eval mode), no loss; what
  // torchvision's model.eval() under torch.no_grad() runs.
  void forward_eval() { forward_impl(/*train=*/false); }

  // Inference as nn/ can run it with kernels/inference_fusion.h: every BN folded into its
  // convolution (once, here on the first call), the activation fused into the convolution's pass.
  void forward_inference_fused() {
    if (!folded_) fold_all();
    auto run = [&](ConvBn& c, const Tensor& in) {
      conv2d_bias_activation_forward(c.p, in, c.w_folded, &c.bias_folded, c.bn.activation, c.y);
    };
    const Tensor* x = &x0_;
    run(stem_, *x);
    x = &stem_.y;
    for (Block& b : blocks_) {
      const Tensor* h = x;
      if (b.expand.defined) {
        run(b.expand, *h);
        h = &b.expand.y;
      }
      run(b.depthwise, *h);
      se_gate(b);  // the gate goes into the projection's weights: no channel_scale pass
      pointwise_gated_forward(b.depthwise.y, b.gate, b.project.w_folded, &b.project.bias_folded,
                              b.project.bn.activation, b.project.y);
      if (b.residual) add_(b.project.y, *x);
      x = &b.project.y;
    }
    run(head_, *x);
    global_avg_pool_forward(head_.y, features_);
    linear_forward(features_, classifier_.w, &classifier_.b, classifier_.y);
  }

  void forward_impl(bool train) {
    auto run = [&](ConvBn& c, const Tensor& in) { train ? run_train(c, in) : run_eval(c, in); };
    const Tensor* x = &x0_;
    run(stem_, *x);
    x = &stem_.y;
    for (Block& b : blocks_) {
      const Tensor* h = x;
      if (b.expand.defined) {
        run(b.expand, *h);
        h = &b.expand.y;
      }
      run(b.depthwise, *h);
      se_forward(b);
      run(b.project, b.scaled);
      if (b.residual) add_(b.project.y, *x);
      x = &b.project.y;
    }
    run(head_, *x);
    global_avg_pool_forward(head_.y, features_);
    linear_forward(features_, classifier_.w, &classifier_.b, classifier_.y);
    if (train) cross_entropy_forward({}, classifier_.y, targets_, loss_);
  }

  void backward() {
    cross_entropy_backward({}, classifier_.y, targets_, 1.0f, classifier_.dy);
    linear_backward_weight(features_, classifier_.dy, classifier_.dw, &classifier_.db);
    linear_backward_input(classifier_.dy, classifier_.w, features_grad_);
    global_avg_pool_backward(features_grad_, head_.dy);
    const Tensor* dx = &back(head_, blocks_.back().project.y);
    for (size_t i = blocks_.size(); i-- > 0;) {
      Block& b = blocks_[i];
      const Tensor& block_input = i == 0 ? stem_.y : blocks_[i - 1].project.y;
      // dx is the gradient of this block's output (residual included).
      b.project.dy.copy_from(*dx);
      const Tensor& dscaled = back(b.project, b.scaled);
      channel_scale_backward(b.depthwise.y, b.gate, dscaled, b.depthwise.dy, b.gate_grad);
      activation_backward(math::Activation::sigmoid, b.se_expand.y, b.gate_grad, b.se_expand.dy);
      linear_backward_weight(b.reduce_act, b.se_expand.dy, b.se_expand.dw, &b.se_expand.db);
      linear_backward_input(b.se_expand.dy, b.se_expand.w, b.se_reduce.dy);
      activation_backward(math::Activation::swish, b.se_reduce.y, b.se_reduce.dy, b.se_reduce.dy);
      linear_backward_weight(b.pooled, b.se_reduce.dy, b.se_reduce.dw, &b.se_reduce.db);
      linear_backward_input(b.se_reduce.dy, b.se_reduce.w, b.pooled_grad);
      global_avg_pool_backward(b.pooled_grad, b.scaled_grad);  // reuse as scratch for the SE path
      add_(b.depthwise.dy, b.scaled_grad);
      Tensor* d = &back(b.depthwise, b.expand.defined ? b.expand.y : block_input);
      if (b.expand.defined) {
        b.expand.dy.copy_from(*d);
        d = &back(b.expand, block_input);
      }
      if (b.residual) add_(*d, *dx);
      dx = d;
    }
    stem_.dy.copy_from(*dx);
    back(stem_, x0_, /*need_input_grad=*/false);
  }

  // AdamW over every parameter: f32 master weights, updated from the (f32, f16 or bf16)
  // gradients, then cast back to the compute dtype when that is not f32.
  void optimizer_step() {
    ++step_;
    for (AdamSlot& slot : adam_state_) {
      adamw_step({}, step_, slot.master, *slot.grad, slot.m, slot.v);
      if (slot.param->dtype() != DType::f32) cast(slot.master, *slot.param);
    }
  }

  size_t parameter_tensors() const { return adam_state_.size(); }

  // The classifier's logits of the last forward.
  const Tensor& logits() const { return classifier_.y; }

 private:
  struct ConvBn {
    bool defined = false;
    Conv2dParams p;
    Tensor w_folded, bias_folded;  // inference: BN folded into the convolution
    Tensor w, dw, conv_out, y, dy, dconv, gamma, beta, dgamma, dbeta, mean, var, saved_mean, saved_invstd, dx;
    BatchNormParams bn;
  };
  struct Linear {
    Tensor w, b, y, dw, db, dy;
  };
  struct Block {
    ConvBn expand, depthwise, project;
    Linear se_reduce, se_expand;
    Tensor pooled, pooled_grad, reduce_act, gate, gate_grad, scaled, scaled_grad;
    bool residual = false;
  };

  Tensor empty(Shape s, DType dtype) { return Tensor::empty(std::move(s), dtype, device_); }
  Tensor empty(Shape s) { return empty(std::move(s), dtype_); }
  Tensor random(Shape s, DType dtype, float range) {
    return random_tensor(std::move(s), dtype, device_, -range, range);
  }
  Tensor f32(Shape s, float value) {
    Tensor t = Tensor::from_floats(std::vector<float>(size_t(s.numel()), value), s).to(device_);
    return t;
  }

  ConvBn conv_bn(const Shape& in, int64_t cin, int64_t cout, int64_t k, int64_t stride, bool depthwise, int64_t& size,
                 math::Activation act = math::Activation::swish) {
    ConvBn c;
    c.defined = true;
    c.p = make_conv2d_params(k, k, stride, Padding::tf_same, in[1], in[2], depthwise ? cin : 1);
    const Conv2dShape s = conv2d_shape("B0", c.p, in, Shape{cout, k, k, depthwise ? 1 : cin});
    c.w = random({cout, k, k, depthwise ? 1 : cin}, dtype_, 0.1f);
    c.dw = empty(c.w.shape());
    const Shape out{in[0], s.out_h, s.out_w, cout};
    c.conv_out = empty(out);
    c.y = empty(out);
    c.dy = empty(out);
    c.dconv = empty(out);
    c.dx = empty(in);
    c.gamma = f32({cout}, 1.0f);
    c.beta = f32({cout}, 0.0f);
    c.dgamma = empty({cout}, DType::f32);
    c.dbeta = empty({cout}, DType::f32);
    c.mean = f32({cout}, 0.0f);
    c.var = f32({cout}, 1.0f);
    c.saved_mean = empty({cout}, DType::f32);
    c.saved_invstd = empty({cout}, DType::f32);
    c.bn.eps = 1e-3;
    c.bn.activation = act;
    size = s.out_h;
    return c;
  }

  Linear linear(int64_t in, int64_t out, int64_t batch) {
    Linear l;
    l.w = random({out, in}, dtype_, 0.1f);
    l.b = random({out}, dtype_, 0.1f);
    l.dw = empty(l.w.shape());
    l.db = empty(l.b.shape());
    l.y = empty({batch, out});
    l.dy = empty({batch, out});
    return l;
  }

  // Called once every layer is in place, so the pointers below stay valid.
  void collect_parameters() {
    auto conv = [&](ConvBn& c) {
      if (!c.defined) return;
      track(c.w, c.dw);
      track(c.gamma, c.dgamma);
      track(c.beta, c.dbeta);
    };
    auto lin = [&](Linear& l) {
      track(l.w, l.dw);
      track(l.b, l.db);
    };
    conv(stem_);
    for (Block& b : blocks_) {
      conv(b.expand);
      conv(b.depthwise);
      lin(b.se_reduce);
      lin(b.se_expand);
      conv(b.project);
    }
    conv(head_);
    lin(classifier_);
  }

  void track(Tensor& param, Tensor& grad) {
    AdamSlot slot{&param, &grad, Tensor::empty(param.shape(), DType::f32, device_),
                  Tensor::zeros(param.shape(), DType::f32, device_), Tensor::zeros(param.shape(), DType::f32, device_)};
    if (param.dtype() == DType::f32) slot.master = param;  // the parameter is its own master copy
    else cast(param, slot.master);
    adam_state_.push_back(std::move(slot));
  }

  // Squeeze-excite of the depthwise output: b.scaled = depthwise.y * sigmoid(expand(swish(reduce(pool)))).
  void se_forward(Block& b) {
    se_gate(b);
    channel_scale_forward(b.depthwise.y, b.gate, b.scaled);
  }
  void se_gate(Block& b) {
    global_avg_pool_forward(b.depthwise.y, b.pooled);
    linear_forward(b.pooled, b.se_reduce.w, &b.se_reduce.b, b.se_reduce.y);
    activation_forward(math::Activation::swish, b.se_reduce.y, b.reduce_act);
    linear_forward(b.reduce_act, b.se_expand.w, &b.se_expand.b, b.se_expand.y);
    activation_forward(math::Activation::sigmoid, b.se_expand.y, b.gate);
  }

  void fold(ConvBn& c) {
    if (!c.defined) return;
    c.w_folded = empty(c.w.shape());
    c.bias_folded = empty({c.w.dim(0)}, DType::f32);
    fold_batch_norm_into_conv(c.w, nullptr, c.gamma, c.beta, c.mean, c.var, c.bn.eps, c.w_folded, c.bias_folded);
  }
  void fold_all() {
    fold(stem_);
    for (Block& b : blocks_) {
      fold(b.expand);
      fold(b.depthwise);
      fold(b.project);
    }
    fold(head_);
    folded_ = true;
  }

  void run_train(ConvBn& c, const Tensor& x) {
    conv2d_forward(c.p, x, c.w, nullptr, c.conv_out);
    batch_norm_forward_train(c.bn, c.conv_out, c.gamma, c.beta, c.mean, c.var, c.y, c.saved_mean, c.saved_invstd);
  }
  void run_eval(ConvBn& c, const Tensor& x) {
    conv2d_forward(c.p, x, c.w, nullptr, c.conv_out);
    batch_norm_forward_eval(c.bn, c.conv_out, c.gamma, c.beta, c.mean, c.var, c.y);
  }

  // Backward of conv + BN(+act) from c.dy; returns the gradient of the input.
  Tensor& back(ConvBn& c, const Tensor& x, bool need_input_grad = true) {
    batch_norm_backward(c.bn, c.conv_out, c.dy, c.gamma, c.beta, c.saved_mean, c.saved_invstd, c.dconv, c.dgamma,
                        c.dbeta);
    conv2d_backward_weight(c.p, x, c.dconv, c.dw, nullptr);
    if (need_input_grad) conv2d_backward_input(c.p, c.dconv, c.w, c.dx);
    return c.dx;
  }

  struct AdamSlot {
    Tensor* param;
    Tensor* grad;
    Tensor master, m, v;
  };

  Device device_;
  DType dtype_;
  Tensor x0_;
  ConvBn stem_, head_;
  std::vector<Block> blocks_;
  Tensor features_, features_grad_, targets_, loss_;
  Linear classifier_;
  std::vector<AdamSlot> adam_state_;
  int64_t step_ = 0;
  bool folded_ = false;
};

}  // namespace sg::bench
