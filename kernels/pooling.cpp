#include "kernels/pooling.h"

#include <algorithm>
#include <limits>

#include "core/meta_device.h"
#include "kernels/check.h"
#include "kernels/cpu/pooling.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/pooling.h"
#endif

namespace sg {
namespace {

// The argmax indices are i32 within one input plane.
void check_plane_fits_i32(const char* op, const Shape& x) {
  SG_CHECK(x[1] * x[2] <= std::numeric_limits<int32_t>::max(), op, ": x has shape ", x.str(),
           ", its H * W does not fit the i32 argmax");
}

// [N, H, W, C] floating input of a global pool.
void check_global_input(const char* op, const char* name, const Tensor& x) {
  check::floating(op, name, x);
  check::rank(op, name, x, 4);
  SG_CHECK(x.dim(1) > 0 && x.dim(2) > 0, op, ": ", name, " has shape ", x.shape().str(),
           ", expected H and W of at least 1");
}

void check_argmax(const char* op, const Tensor& argmax, const Shape& expected) {
  check::shape(op, "argmax", argmax, expected);
  check::dtype(op, "argmax", argmax, DType::i32);
}

void check_gem_p(const char* op, const char* name, const Tensor& p) {
  check::shape(op, name, p, Shape{1});
  check::dtype(op, name, p, DType::f32);
}

}  // namespace

Pool2dShape pool2d_shape(const char* op, const Pool2dParams& p, const Shape& x) {
  SG_CHECK(x.rank() == 4, op, ": x has shape ", x.str(), ", expected rank 4 [N, H, W, C]");
  SG_CHECK(p.kernel_h > 0 && p.kernel_w > 0 && p.stride_h > 0 && p.stride_w > 0, op, ": ", to_string(p),
           ": kernel and stride must be positive");
  SG_CHECK(p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0 && p.pad_top < p.kernel_h &&
               p.pad_bottom < p.kernel_h && p.pad_left < p.kernel_w && p.pad_right < p.kernel_w,
           op, ": ", to_string(p), ": each pad must be in [0, kernel) so every window holds a real pixel");
  SG_CHECK(x[1] + p.pad_top + p.pad_bottom >= p.kernel_h && x[2] + p.pad_left + p.pad_right >= p.kernel_w, op,
           ": x has shape ", x.str(), ", smaller than the ", to_string(p), " window");
  Pool2dShape s;
  s.n = x[0];
  s.h = x[1];
  s.w = x[2];
  s.c = x[3];
  s.out_h = pool2d_output_extent(s.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
  s.out_w = pool2d_output_extent(s.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
  return s;
}

void max_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, Tensor* argmax, const Stream& stream) {
  constexpr const char* op = "max_pool2d_forward";
  check::floating(op, "x", x);
  const Pool2dShape s = pool2d_shape(op, p, x.shape());
  check_plane_fits_i32(op, x.shape());
  const Shape out{s.n, s.out_h, s.out_w, s.c};
  check::shape(op, "y", y, out);
  check::same_dtype(op, {&x, &y});
  if (argmax) check_argmax(op, *argmax, out);
  const DeviceGuard on_device = check::same_device(op, {&x, &y, argmax});
  int32_t* index = argmax ? argmax->data_as<int32_t>() : nullptr;
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::max_pool2d_forward(p, s, x.dtype(), x.data(), y.data(), index);
#if SLIDEGRADE_WITH_CUDA
  cuda::max_pool2d_forward(p, s, x.dtype(), x.data(), y.data(), index, stream.handle());
#else
  (void)stream;
#endif
}

void max_pool2d_backward(const Pool2dParams& p, const Tensor& argmax, const Tensor& dy, Tensor& dx,
                         const Stream& stream) {
  constexpr const char* op = "max_pool2d_backward";
  check::floating(op, "dx", dx);
  const Pool2dShape s = pool2d_shape(op, p, dx.shape());
  const Shape out{s.n, s.out_h, s.out_w, s.c};
  check::shape(op, "dy", dy, out);
  check_argmax(op, argmax, out);
  check::same_dtype(op, {&dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&argmax, &dy, &dx});
  if (dx.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (dx.device().is_cpu())
    return cpu::max_pool2d_backward(p, s, dx.dtype(), argmax.data_as<int32_t>(), dy.data(), dx.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::max_pool2d_backward(p, s, dx.dtype(), argmax.data_as<int32_t>(), dy.data(), dx.data(), stream.handle());
#else
  (void)stream;
#endif
}

void avg_pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y, const Stream& stream) {
  constexpr const char* op = "avg_pool2d_forward";
  check::floating(op, "x", x);
  const Pool2dShape s = pool2d_shape(op, p, x.shape());
  check::shape(op, "y", y, Shape{s.n, s.out_h, s.out_w, s.c});
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::avg_pool2d_forward(p, s, x.dtype(), x.data(), y.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::avg_pool2d_forward(p, s, x.dtype(), x.data(), y.data(), stream.handle());
#else
  (void)stream;
#endif
}

void avg_pool2d_backward(const Pool2dParams& p, const Tensor& dy, Tensor& dx, const Stream& stream) {
  constexpr const char* op = "avg_pool2d_backward";
  check::floating(op, "dx", dx);
  const Pool2dShape s = pool2d_shape(op, p, dx.shape());
  check::shape(op, "dy", dy, Shape{s.n, s.out_h, s.out_w, s.c});
  check::same_dtype(op, {&dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&dy, &dx});
  if (dx.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (dx.device().is_cpu()) return cpu::avg_pool2d_backward(p, s, dx.dtype(), dy.data(), dx.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::avg_pool2d_backward(p, s, dx.dtype(), dy.data(), dx.data(), stream.handle());
#else
  (void)stream;
#endif
}

void global_avg_pool_forward(const Tensor& x, Tensor& y, const Stream& stream) {
  constexpr const char* op = "global_avg_pool_forward";
  check_global_input(op, "x", x);
  check::shape(op, "y", y, Shape{x.dim(0), x.dim(3)});
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::global_avg_pool_forward(x.dtype(), x.data(), y.data(), n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::global_avg_pool_forward(x.dtype(), x.data(), y.data(), n, hw, c, stream.handle());
#else
  (void)stream;
#endif
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx, const Stream& stream) {
  constexpr const char* op = "global_avg_pool_backward";
  check_global_input(op, "dx", dx);
  check::shape(op, "dy", dy, Shape{dx.dim(0), dx.dim(3)});
  check::same_dtype(op, {&dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&dy, &dx});
  const int64_t n = dx.dim(0), hw = dx.dim(1) * dx.dim(2), c = dx.dim(3);
  if (dx.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (dx.device().is_cpu()) return cpu::global_avg_pool_backward(dx.dtype(), dy.data(), dx.data(), n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::global_avg_pool_backward(dx.dtype(), dy.data(), dx.data(), n, hw, c, stream.handle());
#else
  (void)stream;
#endif
}

void global_max_pool_forward(const Tensor& x, Tensor& y, Tensor* argmax, const Stream& stream) {
  constexpr const char* op = "global_max_pool_forward";
  check_global_input(op, "x", x);
  check_plane_fits_i32(op, x.shape());
  const Shape out{x.dim(0), x.dim(3)};
  check::shape(op, "y", y, out);
  check::same_dtype(op, {&x, &y});
  if (argmax) check_argmax(op, *argmax, out);
  const DeviceGuard on_device = check::same_device(op, {&x, &y, argmax});
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  int32_t* index = argmax ? argmax->data_as<int32_t>() : nullptr;
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::global_max_pool_forward(x.dtype(), x.data(), y.data(), index, n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::global_max_pool_forward(x.dtype(), x.data(), y.data(), index, n, hw, c, stream.handle());
#else
  (void)stream;
#endif
}

void global_max_pool_backward(const Tensor& argmax, const Tensor& dy, Tensor& dx, const Stream& stream) {
  constexpr const char* op = "global_max_pool_backward";
  check_global_input(op, "dx", dx);
  const Shape out{dx.dim(0), dx.dim(3)};
  check::shape(op, "dy", dy, out);
  check_argmax(op, argmax, out);
  check::same_dtype(op, {&dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&argmax, &dy, &dx});
  const int64_t n = dx.dim(0), hw = dx.dim(1) * dx.dim(2), c = dx.dim(3);
  if (dx.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (dx.device().is_cpu())
    return cpu::global_max_pool_backward(dx.dtype(), argmax.data_as<int32_t>(), dy.data(), dx.data(), n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::global_max_pool_backward(dx.dtype(), argmax.data_as<int32_t>(), dy.data(), dx.data(), n, hw, c,
                                 stream.handle());
#else
  (void)stream;
#endif
}

void gem_pool_forward(const Tensor& x, const Tensor& p, Tensor& y, float eps, const Stream& stream) {
  constexpr const char* op = "gem_pool_forward";
  check_global_input(op, "x", x);
  check_gem_p(op, "p", p);
  check::shape(op, "y", y, Shape{x.dim(0), x.dim(3)});
  check::same_dtype(op, {&x, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &p, &y});
  SG_CHECK(eps > 0.0f, op, ": eps ", eps, " must be positive");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::gem_pool_forward(x.dtype(), x.data(), *p.data_as<float>(), y.data(), n, hw, c, eps);
#if SLIDEGRADE_WITH_CUDA
  cuda::gem_pool_forward(x.dtype(), x.data(), p.data_as<float>(), y.data(), n, hw, c, eps, stream.handle());
#else
  (void)stream;
#endif
}

void gem_pool_backward(const Tensor& x, const Tensor& p, const Tensor& dy, Tensor& dx, Tensor& dp, float eps,
                       const Stream& stream) {
  constexpr const char* op = "gem_pool_backward";
  check_global_input(op, "x", x);
  check_gem_p(op, "p", p);
  check_gem_p(op, "dp", dp);
  check::shape(op, "dy", dy, Shape{x.dim(0), x.dim(3)});
  check::shape(op, "dx", dx, x.shape());
  check::same_dtype(op, {&x, &dy, &dx});
  const DeviceGuard on_device = check::same_device(op, {&x, &p, &dy, &dx, &dp});
  SG_CHECK(eps > 0.0f, op, ": eps ", eps, " must be positive");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (x.device().is_meta()) {  // the CUDA kernel's workspace below; none on the CPU (core/meta_device.h)
    if (meta::Session::current(op).target().cuda)
      meta::kernel_scratch({size_t(cuda_gem_pool_backward_workspace_floats(n, c)) * sizeof(float)},
                           "gem_pool_backward workspace");
    return;
  }
  if (x.device().is_cpu())
    return cpu::gem_pool_backward(x.dtype(), x.data(), *p.data_as<float>(), dy.data(), dx.data(),
                                  dp.data_as<float>(), n, hw, c, eps);
#if SLIDEGRADE_WITH_CUDA
  // Per-(n, c) contributions to dp, summed in a fixed order by a second kernel.
  Tensor workspace = Tensor::empty({cuda_gem_pool_backward_workspace_floats(n, c)}, DType::f32, x.device(), stream,
                                   "gem_pool_backward workspace");
  cuda::gem_pool_backward(x.dtype(), x.data(), p.data_as<float>(), dy.data(), dx.data(), dp.data_as<float>(),
                          workspace.data_as<float>(), n, hw, c, eps, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
