#include "kernels/activation.h"

#include "kernels/check.h"
#include "kernels/cpu/activation.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/activation.h"
#endif

namespace sg {

Activation parse_activation(std::string_view name) {
  if (name == "identity" || name == "linear") return Activation::identity;
  if (name == "relu") return Activation::relu;
  if (name == "relu6") return Activation::relu6;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "swish" || name == "silu") return Activation::swish;
  if (name == "mish") return Activation::mish;
  throw Error(detail::concat("unknown activation \"", name, "\" (expected identity, relu, relu6, sigmoid, swish, silu or mish)"));
}

std::string_view activation_name(Activation kind) {
  switch (kind) {
    case Activation::identity: return "identity";
    case Activation::relu: return "relu";
    case Activation::relu6: return "relu6";
    case Activation::sigmoid: return "sigmoid";
    case Activation::swish: return "swish";
    case Activation::mish: return "mish";
  }
  return "?";
}

void activation_forward(Activation kind, const Tensor& x, Tensor& y, const Stream& stream) {
  constexpr const char* op = "activation_forward";
  check::floating(op, "x", x);
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
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
  if (x.device().is_cpu())
    return cpu::activation_backward(kind, x.dtype(), x.data(), dy.data(), dx.data(), x.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::activation_backward(kind, x.dtype(), x.data(), dy.data(), dx.data(), x.numel(), stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
