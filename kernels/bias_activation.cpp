#include "kernels/bias_activation.h"

#include "core/meta_device.h"
#include "kernels/check.h"
#include "kernels/cuda_channel_reduce_layout.h"
#include "kernels/cpu/bias_activation.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/bias_activation.h"
#endif

namespace sg {
namespace {

// x is [..., C] (rank >= 1); bias is f32 [C]. Returns C.
int64_t check_x_and_bias(const char* op, const Tensor& x, const Tensor& bias) {
  check::floating(op, "x", x);
  SG_CHECK(x.rank() >= 1, op, ": x has shape ", x.shape().str(), ", expected [..., C]");
  const int64_t C = x.dim(-1);
  check::shape(op, "bias", bias, Shape{C});
  check::dtype(op, "bias", bias, DType::f32);
  return C;
}

}  // namespace

void bias_activation_forward(math::Activation activation, const Tensor& x, const Tensor& bias, Tensor& y,
                             const Stream& stream) {
  constexpr const char* op = "bias_activation_forward";
  const int64_t C = check_x_and_bias(op, x, bias);
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &bias, &y});
  if (x.numel() == 0) return;
  const int64_t M = x.numel() / C;
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::bias_activation_forward(activation, x.dtype(), x.data(), bias.data_as<float>(), y.data(), M, C);
#if SLIDEGRADE_WITH_CUDA
  cuda::bias_activation_forward(activation, x.dtype(), x.data(), bias.data_as<float>(), y.data(), M, C,
                                stream.handle());
#else
  (void)stream;
#endif
}

void bias_activation_backward(math::Activation activation, const Tensor& x, const Tensor& bias, const Tensor& dy,
                              Tensor& dx, Tensor& dbias, const Stream& stream) {
  constexpr const char* op = "bias_activation_backward";
  const int64_t C = check_x_and_bias(op, x, bias);
  check::shape(op, "dy", dy, x.shape());
  check::shape(op, "dx", dx, x.shape());
  check::shape(op, "dbias", dbias, Shape{C});
  check::dtype(op, "dbias", dbias, DType::f32);
  check::same_dtype(op, {&x, &dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&x, &bias, &dy, &dx, &dbias});
  if (C == 0) return;
  if (x.numel() == 0) {
    dbias.zero_(stream);
    return;
  }
  const int64_t M = x.numel() / C;
  if (x.device().is_meta()) {  // the CUDA kernel's partial sums of dbias; none on the CPU
    if (meta::Session::current(op).target().cuda)
      meta::kernel_scratch({channel_partials_bytes(M, C, dtype_size(x.dtype()))}, "bias_activation partial sums");
    return;
  }
  if (x.device().is_cpu())
    return cpu::bias_activation_backward(activation, x.dtype(), x.data(), bias.data_as<float>(), dy.data(), dx.data(),
                                         dbias.data_as<float>(), M, C);
#if SLIDEGRADE_WITH_CUDA
  cuda::bias_activation_backward(activation, x.dtype(), x.data(), bias.data_as<float>(), dy.data(), dx.data(),
                                 dbias.data_as<float>(), M, C, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
