#include "kernels/inference_fusion.h"

#include <cmath>
#include <vector>

#include "kernels/bias_activation.h"
#include "kernels/check.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/tensor_ops.h"

namespace sg {

void fold_batch_norm_into_conv(const Tensor& w, const Tensor* bias, const Tensor& gamma, const Tensor& beta,
                               const Tensor& running_mean, const Tensor& running_var, double eps, Tensor& w_folded,
                               Tensor& bias_folded) {
  constexpr const char* op = "fold_batch_norm_into_conv";
  check::floating(op, "w", w);
  SG_CHECK(w.rank() == 4, op, ": w has shape ", w.shape().str(), ", expected rank 4 [Cout, kh, kw, Cin/groups]");
  SG_CHECK(eps >= 0, op, ": eps is ", eps, ", expected >= 0");
  const int64_t c_out = w.dim(0);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"gamma", &gamma}, {"beta", &beta},
                                {"running_mean", &running_mean}, {"running_var", &running_var}}) {
    check::shape(op, name, *t, Shape{c_out});
    check::dtype(op, name, *t, DType::f32);
  }
  if (bias) check::shape(op, "bias", *bias, Shape{c_out});
  if (bias) check::dtype(op, "bias", *bias, w.dtype());
  check::dtype(op, "w_folded", w_folded, w.dtype());
  check::shape(op, "w_folded", w_folded, w.shape());
  check::shape(op, "bias_folded", bias_folded, Shape{c_out});
  check::dtype(op, "bias_folded", bias_folded, DType::f32);
  const DeviceGuard on_device =
      check::same_device(op, {&w, bias, &gamma, &beta, &running_mean, &running_var, &w_folded, &bias_folded});

  // Parameters are small: fold on the host in double, then store in the targets' dtypes.
  const std::vector<float> wv = w.to_floats(), g = gamma.to_floats(), b = beta.to_floats(),
                           mean = running_mean.to_floats(), var = running_var.to_floats();
  const std::vector<float> bv = bias ? bias->to_floats() : std::vector<float>(size_t(c_out), 0.0f);
  const int64_t per_output = c_out == 0 ? 0 : w.numel() / c_out;
  std::vector<float> wf(wv.size()), bf(static_cast<size_t>(c_out));
  for (int64_t o = 0; o < c_out; ++o) {
    const size_t i = size_t(o);
    SG_CHECK(double(var[i]) + eps > 0, op, ": running_var[", o, "] + eps is ", double(var[i]) + eps,
             ", expected > 0");
    const double scale = double(g[i]) / std::sqrt(double(var[i]) + eps);
    for (int64_t k = 0; k < per_output; ++k) {
      const size_t j = size_t(o * per_output + k);
      wf[j] = float(double(wv[j]) * scale);
    }
    bf[i] = float(double(b[i]) + (double(bv[i]) - double(mean[i])) * scale);
  }
  w_folded.copy_from(Tensor::from_floats(wf, w.shape(), w.dtype()).to(w.device()));
  bias_folded.copy_from(Tensor::from_floats(bf, Shape{c_out}, DType::f32).to(w.device()));
}

void conv2d_bias_activation_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias,
                                    math::Activation act, Tensor& y, const Stream& stream) {
  constexpr const char* op = "conv2d_bias_activation_forward";
  check::floating(op, "x", x);
  check::defined(op, "w", w);
  const Conv2dShape s = conv2d_shape(op, p, x.shape(), w.shape());
  if (bias) {
    check::shape(op, "bias", *bias, Shape{s.c_out});
    check::dtype(op, "bias", *bias, DType::f32);
  }
  check::shape(op, "y", y, Shape{s.n, s.out_h, s.out_w, s.c_out});
  check::same_dtype(op, {&x, &w, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &w, bias, &y});
  // The fused inference kernels are not modelled on meta (core/meta_device.h): the memory plan is of
  // training steps, which never take this path.
  SG_CHECK(!x.device().is_meta(), op, ": the fused inference kernels do not run on the meta device");
  if (x.device().is_cpu())
    return cpu::conv2d_bias_activation_forward(p, s, x.dtype(), x.data(), w.data(),
                                               bias ? bias->data_as<float>() : nullptr, act, y.data());
  // Other devices: the two existing kernels.
  conv2d_forward(p, x, w, nullptr, y, stream);
  if (bias) {
    bias_activation_forward(act, y, *bias, y, stream);
  } else if (act != math::Activation::identity) {
    const Tensor zeros = Tensor::zeros(Shape{s.c_out}, DType::f32, y.device(), stream);
    bias_activation_forward(act, y, zeros, y, stream);
  }
}

void pointwise_gated_forward(const Tensor& x, const Tensor& gate, const Tensor& w, const Tensor* bias,
                             math::Activation act, Tensor& y, const Stream& stream) {
  constexpr const char* op = "pointwise_gated_forward";
  check::floating(op, "x", x);
  SG_CHECK(x.rank() == 4, op, ": x has shape ", x.shape().str(), ", expected [N, H, W, Cin]");
  const int64_t n = x.dim(0), h = x.dim(1), wd = x.dim(2), c_in = x.dim(3);
  check::defined(op, "w", w);
  SG_CHECK(w.rank() == 4 && w.dim(1) == 1 && w.dim(2) == 1 && w.dim(3) == c_in, op, ": w has shape ",
           w.shape().str(), ", expected [Cout, 1, 1, ", c_in, "] for x ", x.shape().str());
  const int64_t c_out = w.dim(0);
  check::shape(op, "gate", gate, Shape{n, c_in});
  if (bias) {
    check::shape(op, "bias", *bias, Shape{c_out});
    check::dtype(op, "bias", *bias, DType::f32);
  }
  check::shape(op, "y", y, Shape{n, h, wd, c_out});
  check::same_dtype(op, {&x, &gate, &w, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &gate, &w, bias, &y});
  if (x.numel() == 0 || c_out == 0) return;
  // The fused inference kernels are not modelled on meta (core/meta_device.h): the memory plan is of
  // training steps, which never take this path.
  SG_CHECK(!x.device().is_meta(), op, ": the fused inference kernels do not run on the meta device");
  if (x.device().is_cpu())
    return cpu::pointwise_gated_forward(n, h * wd, c_in, c_out, x.dtype(), x.data(), gate.data(), w.data(),
                                        bias ? bias->data_as<float>() : nullptr, act, y.data());
  // Other devices: gate the activations into scratch, then the fused convolution.
  Tensor gated = Tensor::empty(x.shape(), x.dtype(), x.device(), stream, "pointwise_gated_forward scratch");
  channel_scale_forward(x, gate, gated, stream);
  conv2d_bias_activation_forward(make_conv2d_params(1, 1, 1, Padding::symmetric, h, wd), gated, w, bias, act, y,
                                 stream);
}

}  // namespace sg
