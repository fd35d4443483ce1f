#include "kernels/batch_norm.h"

#include "core/meta_device.h"
#include "kernels/check.h"
#include "kernels/cuda_channel_reduce_layout.h"
#include "kernels/cpu/batch_norm.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/batch_norm.h"
#endif

namespace sg {
namespace {

struct Extents {
  int64_t M;  // elements per channel (N*H*W)
  int64_t C;
};

// x is [..., C] with rank >= 2; every per-channel tensor is f32 [C] on x's device.
Extents check_input(const char* op, const BatchNormParams& p, const Tensor& x) {
  check::floating(op, "x", x);
  SG_CHECK(x.rank() >= 2, op, ": x has shape ", x.shape().str(), ", expected [N, H, W, C] (rank >= 2)");
  SG_CHECK(p.eps >= 0, op, ": eps is ", p.eps, ", expected >= 0");
  SG_CHECK(p.momentum >= 0 && p.momentum <= 1, op, ": momentum is ", p.momentum,
           ", expected within [0, 1] (PyTorch's convention: Keras 0.99 is 0.01)");
  const int64_t C = x.dim(-1);
  return {C == 0 ? 0 : x.numel() / C, C};
}

void check_channel_vector(const char* op, const char* name, const Tensor& t, int64_t C) {
  check::shape(op, name, t, Shape{C});
  check::dtype(op, name, t, DType::f32);
}

}  // namespace

void batch_norm_forward_train(const BatchNormParams& p, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& saved_mean,
                              Tensor& saved_invstd, const Stream& stream) {
  constexpr const char* op = "batch_norm_forward_train";
  const auto [M, C] = check_input(op, p, x);
  check_channel_vector(op, "gamma", gamma, C);
  check_channel_vector(op, "beta", beta, C);
  check_channel_vector(op, "running_mean", running_mean, C);
  check_channel_vector(op, "running_var", running_var, C);
  check_channel_vector(op, "saved_mean", saved_mean, C);
  check_channel_vector(op, "saved_invstd", saved_invstd, C);
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device =
      check::same_device(op, {&x, &gamma, &beta, &running_mean, &running_var, &y, &saved_mean, &saved_invstd});
  SG_CHECK(M >= 2 || C == 0, op, ": x has shape ", x.shape().str(),
           ", expected more than one value per channel when training");
  if (C == 0) return;
  if (x.device().is_meta()) {  // the CUDA kernel's partial moments; the CPU's needs no scratch
    if (meta::Session::current(op).target().cuda)
      meta::kernel_scratch({channel_partials_bytes(M, C, dtype_size(x.dtype()))}, "batch_norm partial moments");
    return;
  }
  if (x.device().is_cpu())
    return cpu::batch_norm_forward_train(x.dtype(), x.data(), gamma.data_as<float>(), beta.data_as<float>(),
                                         running_mean.data_as<float>(), running_var.data_as<float>(), y.data(),
                                         saved_mean.data_as<float>(), saved_invstd.data_as<float>(), M, C, p.eps,
                                         p.momentum, p.activation);
#if SLIDEGRADE_WITH_CUDA
  cuda::batch_norm_forward_train(x.dtype(), x.data(), gamma.data_as<float>(), beta.data_as<float>(),
                                 running_mean.data_as<float>(), running_var.data_as<float>(), y.data(),
                                 saved_mean.data_as<float>(), saved_invstd.data_as<float>(), M, C, p.eps, p.momentum,
                                 p.activation, stream.handle());
#else
  (void)stream;
#endif
}

void batch_norm_forward_eval(const BatchNormParams& p, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, Tensor& y,
                             const Stream& stream) {
  constexpr const char* op = "batch_norm_forward_eval";
  const auto [M, C] = check_input(op, p, x);
  check_channel_vector(op, "gamma", gamma, C);
  check_channel_vector(op, "beta", beta, C);
  check_channel_vector(op, "running_mean", running_mean, C);
  check_channel_vector(op, "running_var", running_var, C);
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &gamma, &beta, &running_mean, &running_var, &y});
  if (x.numel() == 0) return;
  if (x.device().is_meta()) {  // the CUDA kernel's inverse standard deviations
    if (meta::Session::current(op).target().cuda)
      meta::kernel_scratch({size_t(C) * sizeof(float)}, "batch_norm invstd");
    return;
  }
  if (x.device().is_cpu())
    return cpu::batch_norm_forward_eval(x.dtype(), x.data(), gamma.data_as<float>(), beta.data_as<float>(),
                                        running_mean.data_as<float>(), running_var.data_as<float>(), y.data(), M, C,
                                        p.eps, p.activation);
#if SLIDEGRADE_WITH_CUDA
  cuda::batch_norm_forward_eval(x.dtype(), x.data(), gamma.data_as<float>(), beta.data_as<float>(),
                                running_mean.data_as<float>(), running_var.data_as<float>(), y.data(), M, C, p.eps,
                                p.activation, stream.handle());
#else
  (void)stream;
#endif
}

namespace {

void backward_common(const char* op, const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                     const Tensor& gamma, const Tensor& beta, const Tensor& mean, const char* mean_name,
                     const Tensor& stat, const char* stat_name, bool training, Tensor& dx, Tensor& dgamma,
                     Tensor& dbeta, const Stream& stream) {
  const auto [M, C] = check_input(op, p, x);
  check::shape(op, "dy", dy, x.shape());
  check::shape(op, "dx", dx, x.shape());
  check::same_dtype(op, {&x, &dy, &dx});
  check_channel_vector(op, "gamma", gamma, C);
  check_channel_vector(op, "beta", beta, C);
  check_channel_vector(op, mean_name, mean, C);
  check_channel_vector(op, stat_name, stat, C);
  check_channel_vector(op, "dgamma", dgamma, C);
  check_channel_vector(op, "dbeta", dbeta, C);
  const DeviceGuard on_device = check::same_device(op, {&x, &dy, &gamma, &beta, &mean, &stat, &dx, &dgamma, &dbeta});
  if (C == 0) return;
  if (x.device().is_meta()) {  // the CUDA kernel's coefficients and partial sums, live together
    if (meta::Session::current(op).target().cuda)
      meta::kernel_scratch({size_t(cuda_batch_norm_backward_scratch_floats(C)) * sizeof(float),
                            channel_partials_bytes(M, C, dtype_size(x.dtype()))},
                           "batch_norm backward scratch");
    return;
  }
  if (x.device().is_cpu())
    return cpu::batch_norm_backward(x.dtype(), x.data(), dy.data(), gamma.data_as<float>(), beta.data_as<float>(),
                                    mean.data_as<float>(), stat.data_as<float>(), training, p.eps, dx.data(),
                                    dgamma.data_as<float>(), dbeta.data_as<float>(), M, C, p.activation);
#if SLIDEGRADE_WITH_CUDA
  cuda::batch_norm_backward(x.dtype(), x.data(), dy.data(), gamma.data_as<float>(), beta.data_as<float>(),
                            mean.data_as<float>(), stat.data_as<float>(), training, p.eps, dx.data(),
                            dgamma.data_as<float>(), dbeta.data_as<float>(), M, C, p.activation, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace

void batch_norm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                         const Tensor& beta, const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta, const Stream& stream) {
  backward_common("batch_norm_backward", p, x, dy, gamma, beta, saved_mean, "saved_mean", saved_invstd,
                  "saved_invstd", true, dx, dgamma, dbeta, stream);
}

void batch_norm_backward_eval(const BatchNormParams& p, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean, const Tensor& running_var, Tensor& dx,
                              Tensor& dgamma, Tensor& dbeta, const Stream& stream) {
  backward_common("batch_norm_backward_eval", p, x, dy, gamma, beta, running_mean, "running_mean", running_var,
                  "running_var", false, dx, dgamma, dbeta, stream);
}

}  // namespace sg
