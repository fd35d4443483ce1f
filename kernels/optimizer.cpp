#include "kernels/optimizer.h"

#include <cmath>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/optimizer.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/optimizer.h"
#endif

namespace sg {
namespace {

// param f32 and a gradient of any float dtype with its shape, on one device.
void check_param_grad(const char* op, const Tensor& param, const Tensor& grad) {
  check::dtype(op, "param", param, DType::f32);
  check::floating(op, "grad", grad);
  check::shape(op, "grad", grad, param.shape());
}

void check_state(const char* op, const char* name, const Tensor& state, const Tensor& param) {
  check::dtype(op, name, state, DType::f32);
  check::shape(op, name, state, param.shape());
}

void check_grad_list(const char* op, std::span<Tensor* const> grads) {
  for (size_t i = 0; i < grads.size(); ++i) {
    SG_CHECK(grads[i] != nullptr, op, ": grads[", i, "] is null");
    const std::string name = "grads[" + std::to_string(i) + "]";
    check::floating(op, name, *grads[i]);
    SG_CHECK(grads[i]->device() == grads[0]->device(), op, ": tensors on different devices (", grads[0]->str(),
             " and ", name, " ", grads[i]->str(), ")");
  }
}

}  // namespace

void sgd_step(const SgdParams& p, Tensor& param, const Tensor& grad, Tensor* momentum_buffer, bool first_step,
              const Stream& stream) {
  constexpr const char* op = "sgd_step";
  SG_CHECK(p.lr >= 0 && p.momentum >= 0 && p.weight_decay >= 0, op, ": lr ", p.lr, ", momentum ", p.momentum,
           " and weight_decay ", p.weight_decay, " must be >= 0");
  SG_CHECK(!p.nesterov || (p.momentum > 0 && p.dampening == 0), op,
           ": Nesterov momentum needs momentum > 0 and dampening 0 (momentum ", p.momentum, ", dampening ",
           p.dampening, ")");
  check_param_grad(op, param, grad);
  if (p.momentum != 0) {
    SG_CHECK(momentum_buffer != nullptr, op, ": momentum ", p.momentum, " needs a momentum_buffer");
    check_state(op, "momentum_buffer", *momentum_buffer, param);
  }
  Tensor* buf = p.momentum != 0 ? momentum_buffer : nullptr;
  const DeviceGuard on_device = check::same_device(op, {&param, &grad, buf});
  float* buf_data = buf ? buf->data_as<float>() : nullptr;
  if (param.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (param.device().is_cpu())
    return cpu::sgd_step(p, grad.dtype(), param.data_as<float>(), grad.data(), buf_data, first_step, param.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::sgd_step(p, grad.dtype(), param.data_as<float>(), grad.data(), buf_data, first_step, param.numel(),
                 stream.handle());
#else
  (void)stream;
#endif
}

void adamw_step(const AdamWParams& p, int64_t step, Tensor& param, const Tensor& grad, Tensor& exp_avg,
                Tensor& exp_avg_sq, const Stream& stream) {
  constexpr const char* op = "adamw_step";
  SG_CHECK(step >= 1, op, ": step is ", step, ", expected >= 1 (the first step is 1)");
  SG_CHECK(p.lr >= 0 && p.eps >= 0 && p.weight_decay >= 0, op, ": lr ", p.lr, ", eps ", p.eps, " and weight_decay ",
           p.weight_decay, " must be >= 0");
  SG_CHECK(p.beta1 >= 0 && p.beta1 < 1 && p.beta2 >= 0 && p.beta2 < 1, op, ": betas (", p.beta1, ", ", p.beta2,
           ") must be in [0, 1)");
  check_param_grad(op, param, grad);
  check_state(op, "exp_avg", exp_avg, param);
  check_state(op, "exp_avg_sq", exp_avg_sq, param);
  const DeviceGuard on_device = check::same_device(op, {&param, &grad, &exp_avg, &exp_avg_sq});
  if (param.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (param.device().is_cpu())
    return cpu::adamw_step(p, step, grad.dtype(), param.data_as<float>(), grad.data(), exp_avg.data_as<float>(),
                           exp_avg_sq.data_as<float>(), param.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::adamw_step(p, step, grad.dtype(), param.data_as<float>(), grad.data(), exp_avg.data_as<float>(),
                   exp_avg_sq.data_as<float>(), param.numel(), stream.handle());
#else
  (void)stream;
#endif
}

float clip_grad_norm(std::span<Tensor* const> grads, float max_norm, const Stream& stream) {
  constexpr const char* op = "clip_grad_norm";
  SG_CHECK(max_norm >= 0 && std::isfinite(max_norm), op, ": max_norm is ", max_norm, ", expected a finite value >= 0");
  check_grad_list(op, grads);
  if (grads.empty()) return 0.0f;
  const Device device = grads[0]->device();
  const DeviceGuard on_device(device);  // check_grad_list checked that every gradient is on it
  // It returns the norm, a value, which meta tensors do not have (core/meta_device.h).
  SG_CHECK(!device.is_meta(), op, ": the gradients are meta tensors, which have no norm");
  if (device.is_cpu()) {
    double sum = 0;
    for (Tensor* g : grads) sum += cpu::sum_of_squares(g->dtype(), g->data(), g->numel());
    const double total = std::sqrt(sum);
    const double coef = double(max_norm) / (total + 1e-6);
    if (coef < 1)
      for (Tensor* g : grads) cpu::scale(g->dtype(), g->data(), g->numel(), float(coef));
    return float(total);
  }
#if SLIDEGRADE_WITH_CUDA
  // scratch = [norm, coef, partials of grads[0], partials of grads[1], ...]
  std::vector<int64_t> offsets;
  int64_t count = 0;
  for (Tensor* g : grads) {
    offsets.push_back(2 + count);
    count += cuda::sum_of_squares_blocks(g->numel());
  }
  Tensor scratch = Tensor::empty({2 + count}, DType::f32, device, stream, "clip_grad_norm scratch");
  float* s = scratch.data_as<float>();
  for (size_t i = 0; i < grads.size(); ++i)
    cuda::sum_of_squares_partials(grads[i]->dtype(), grads[i]->data(), grads[i]->numel(), s + offsets[i],
                                  stream.handle());
  cuda::finish_grad_norm(s + 2, count, max_norm, s, stream.handle());
  for (Tensor* g : grads) cuda::scale_if_below_one(g->dtype(), g->data(), g->numel(), s + 1, stream.handle());
  float norm = 0;
  cuda::memcpy_async(&norm, s, sizeof norm, stream.handle());
  cuda::stream_synchronize(stream.handle());  // also keeps scratch alive until the kernels are done
  return norm;
#else
  (void)stream;
  throw Error(detail::concat(op, ": ", grads[0]->str(), " needs a CUDA build"));
#endif
}

void non_finite_check_and_unscale(std::span<Tensor* const> grads, Tensor& found_inf, float inv_scale,
                                  const Stream& stream) {
  constexpr const char* op = "non_finite_check_and_unscale";
  check_grad_list(op, grads);
  check::shape(op, "found_inf", found_inf, {1});
  check::dtype(op, "found_inf", found_inf, DType::f32);
  // check_grad_list checked that the gradients share one device; found_inf must be on it too.
  const DeviceGuard on_device = check::same_device(op, {grads.empty() ? nullptr : grads[0], &found_inf});
  float* flag = found_inf.data_as<float>();
  if (found_inf.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (found_inf.device().is_cpu()) {
    for (Tensor* g : grads)
      if (cpu::non_finite_check_and_unscale(g->dtype(), g->data(), g->numel(), inv_scale)) *flag = 1.0f;
    return;
  }
#if SLIDEGRADE_WITH_CUDA
  for (Tensor* g : grads)
    cuda::non_finite_check_and_unscale(g->dtype(), g->data(), g->numel(), inv_scale, flag, stream.handle());
#else
  (void)stream;
#endif
}

bool update_loss_scale(LossScaleState& state, bool found_inf, const LossScaleParams& p) {
  SG_CHECK(p.growth_interval >= 1 && p.growth_factor > 1 && p.backoff_factor > 0 && p.backoff_factor < 1,
           "update_loss_scale: growth_interval ", p.growth_interval, " must be >= 1, growth_factor ", p.growth_factor,
           " > 1 and backoff_factor ", p.backoff_factor, " in (0, 1)");
  SG_CHECK(std::isfinite(p.min_scale) && p.min_scale > 0, "update_loss_scale: min_scale ", p.min_scale,
           " must be finite and > 0");
  if (found_inf) {
    state.scale *= p.backoff_factor;
    state.growth_tracker = 0;
    return false;
  }
  if (++state.growth_tracker == p.growth_interval) {
    const float grown = state.scale * p.growth_factor;
    if (std::isfinite(grown)) state.scale = grown;
    state.growth_tracker = 0;
  }
  return true;
}

}  // namespace sg
