#include "kernels/activation.h"

#include "kernels/check.h"
#include "kernels/cpu/activation.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/activation.h"
#endif

namespace sg {

Activation parse_activation(std::string_view name) { return parse_word(kActivationWords, name); }

std::string_view activation_name(Activation kind) { return word_of(kActivationWords, kind); }

void activation_forward(Activation kind, const Tensor& x, Tensor& y, const Stream& stream) {
  constexpr const char* op = "activation_forward";
  check::floating(op, "x", x);
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::activation_forward(kind, x.dtype(), x.data(), y.data(), x.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::activation_forward(kind, x.dtype(), x.data(), y.data(), x.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void activation_backward(Activation kind, const Tensor& x, const Tensor& dy, Tensor& dx, const Stream& stream) {
  constexpr const char* op = "activation_backward";
  check::floating(op, "x", x);
  check::shape(op, "dy", dy, x.shape());
  check::shape(op, "dx", dx, x.shape());
  check::same_dtype(op, {&x, &dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&x, &dy, &dx});
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::activation_backward(kind, x.dtype(), x.data(), dy.data(), dx.data(), x.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::activation_backward(kind, x.dtype(), x.data(), dy.data(), dx.data(), x.numel(), stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
