#include "kernels/loss.h"

#include <cmath>

#include "kernels/check.h"
#include "kernels/cpu/loss.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/loss.h"
#endif

namespace sg {
namespace {

Shape loss_shape(Reduction reduction, const Shape& per_item) {
  return reduction == Reduction::none ? per_item : Shape{1};
}

void check_reduction(const char* op, Reduction reduction) {
  SG_CHECK(reduction == Reduction::none || reduction == Reduction::mean || reduction == Reduction::sum, op,
           ": unknown reduction ", int(reduction));
}

// Logits [N, C] and targets i32 [N]; on the CPU every target must be a class index.
void check_cross_entropy(const char* op, const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets) {
  check_reduction(op, p.reduction);
  check::floating(op, "logits", logits);
  check::rank(op, "logits", logits, 2);
  SG_CHECK(logits.dim(0) > 0 && logits.dim(1) > 0, op, ": logits has shape ", logits.shape().str(),
           ", expected [N, C] with N, C >= 1");
  check::dtype(op, "targets", targets, DType::i32);
  check::shape(op, "targets", targets, {logits.dim(0)});
  SG_CHECK(p.label_smoothing >= 0 && p.label_smoothing <= 1, op, ": label_smoothing is ", p.label_smoothing,
           ", expected a value in [0, 1]");
  if (targets.device().is_cpu()) {
    const int32_t* t = targets.data_as<int32_t>();
    const int64_t C = logits.dim(1);
    for (int64_t i = 0; i < targets.numel(); ++i)
      SG_CHECK(t[i] >= 0 && t[i] < C, op, ": targets[", i, "] = ", t[i], " is outside [0, ", C, ") (logits ",
               logits.shape().str(), ")");
  }
}

void check_pointwise(const char* op, Reduction reduction, const Tensor& x, const Tensor& targets) {
  check_reduction(op, reduction);
  check::floating(op, "x", x);
  SG_CHECK(x.numel() > 0, op, ": x has shape ", x.shape().str(), ", expected at least one element");
  check::dtype(op, "targets", targets, DType::f32);
  check::shape(op, "targets", targets, x.shape());
}

void pointwise_forward(const char* op, math::PointwiseLoss kind, Reduction reduction, float beta, const Tensor& x,
                       const Tensor& targets, Tensor& loss, const Stream& stream) {
  check_pointwise(op, reduction, x, targets);
  check::dtype(op, "loss", loss, DType::f32);
  check::shape(op, "loss", loss, loss_shape(reduction, x.shape()));
  const DeviceGuard on_device = check::same_device(op, {&x, &targets, &loss});
  const float* t = targets.data_as<float>();
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::pointwise_loss_forward(kind, x.dtype(), x.data(), t, loss.data_as<float>(), x.numel(), reduction, beta);
#if SLIDEGRADE_WITH_CUDA
  cuda::pointwise_loss_forward(kind, x.dtype(), x.data(), t, loss.data_as<float>(), x.numel(), reduction, beta,
                               stream.handle());
#else
  (void)stream;
#endif
}

void pointwise_backward(const char* op, math::PointwiseLoss kind, Reduction reduction, float beta, const Tensor& x,
                        const Tensor& targets, float grad_scale, Tensor& dx, const Stream& stream) {
  check_pointwise(op, reduction, x, targets);
  check::shape(op, "dx", dx, x.shape());
  check::same_dtype(op, {&x, &dx});
  const DeviceGuard on_device = check::same_device(op, {&x, &targets, &dx});
  const float* t = targets.data_as<float>();
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::pointwise_loss_backward(kind, x.dtype(), x.data(), t, dx.data(), x.numel(), reduction, beta,
                                        grad_scale);
#if SLIDEGRADE_WITH_CUDA
  cuda::pointwise_loss_backward(kind, x.dtype(), x.data(), t, dx.data(), x.numel(), reduction, beta, grad_scale,
                                stream.handle());
#else
  (void)stream;
#endif
}

void check_beta(const char* op, float beta) {
  SG_CHECK(beta >= 0 && std::isfinite(beta), op, ": beta is ", beta, ", expected a finite value >= 0");
}

}  // namespace

Reduction parse_reduction(std::string_view name) { return parse_word(kReductionWords, name); }

std::string_view reduction_name(Reduction reduction) { return word_of(kReductionWords, reduction); }

void cross_entropy_forward(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets, Tensor& loss,
                           const Stream& stream) {
  constexpr const char* op = "cross_entropy_forward";
  check_cross_entropy(op, p, logits, targets);
  const int64_t N = logits.dim(0), C = logits.dim(1);
  check::dtype(op, "loss", loss, DType::f32);
  check::shape(op, "loss", loss, loss_shape(p.reduction, {N}));
  const DeviceGuard on_device = check::same_device(op, {&logits, &targets, &loss});
  if (logits.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (logits.device().is_cpu())
    return cpu::cross_entropy_forward(logits.dtype(), logits.data(), targets.data_as<int32_t>(),
                                      loss.data_as<float>(), N, C, p.reduction, p.label_smoothing);
#if SLIDEGRADE_WITH_CUDA
  cuda::cross_entropy_forward(logits.dtype(), logits.data(), targets.data_as<int32_t>(), loss.data_as<float>(), N, C,
                              p.reduction, p.label_smoothing, stream.handle());
#else
  (void)stream;
#endif
}

void cross_entropy_backward(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets,
                            float grad_scale, Tensor& dlogits, const Stream& stream) {
  constexpr const char* op = "cross_entropy_backward";
  check_cross_entropy(op, p, logits, targets);
  const int64_t N = logits.dim(0), C = logits.dim(1);
  check::shape(op, "dlogits", dlogits, logits.shape());
  check::same_dtype(op, {&logits, &dlogits});
  const DeviceGuard on_device = check::same_device(op, {&logits, &targets, &dlogits});
  if (logits.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (logits.device().is_cpu())
    return cpu::cross_entropy_backward(logits.dtype(), logits.data(), targets.data_as<int32_t>(), dlogits.data(), N,
                                       C, p.reduction, p.label_smoothing, grad_scale);
#if SLIDEGRADE_WITH_CUDA
  cuda::cross_entropy_backward(logits.dtype(), logits.data(), targets.data_as<int32_t>(), dlogits.data(), N, C,
                               p.reduction, p.label_smoothing, grad_scale, stream.handle());
#else
  (void)stream;
#endif
}

void bce_with_logits_forward(Reduction reduction, const Tensor& x, const Tensor& targets, Tensor& loss,
                             const Stream& stream) {
  pointwise_forward("bce_with_logits_forward", math::PointwiseLoss::bce_with_logits, reduction, 0.0f, x, targets,
                    loss, stream);
}

void bce_with_logits_backward(Reduction reduction, const Tensor& x, const Tensor& targets, float grad_scale,
                              Tensor& dx, const Stream& stream) {
  pointwise_backward("bce_with_logits_backward", math::PointwiseLoss::bce_with_logits, reduction, 0.0f, x, targets,
                     grad_scale, dx, stream);
}

void mse_loss_forward(Reduction reduction, const Tensor& x, const Tensor& targets, Tensor& loss, const Stream& stream) {
  pointwise_forward("mse_loss_forward", math::PointwiseLoss::mse, reduction, 0.0f, x, targets, loss, stream);
}

void mse_loss_backward(Reduction reduction, const Tensor& x, const Tensor& targets, float grad_scale, Tensor& dx,
                       const Stream& stream) {
  pointwise_backward("mse_loss_backward", math::PointwiseLoss::mse, reduction, 0.0f, x, targets, grad_scale, dx,
                     stream);
}

void smooth_l1_loss_forward(Reduction reduction, float beta, const Tensor& x, const Tensor& targets, Tensor& loss,
                            const Stream& stream) {
  check_beta("smooth_l1_loss_forward", beta);
  pointwise_forward("smooth_l1_loss_forward", math::PointwiseLoss::smooth_l1, reduction, beta, x, targets, loss,
                    stream);
}

void smooth_l1_loss_backward(Reduction reduction, float beta, const Tensor& x, const Tensor& targets,
                             float grad_scale, Tensor& dx, const Stream& stream) {
  check_beta("smooth_l1_loss_backward", beta);
  pointwise_backward("smooth_l1_loss_backward", math::PointwiseLoss::smooth_l1, reduction, beta, x, targets,
                     grad_scale, dx, stream);
}

}  // namespace sg
