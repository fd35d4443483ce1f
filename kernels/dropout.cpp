#include "kernels/dropout.h"

#include "kernels/check.h"
#include "kernels/cpu/dropout.h"
#include "kernels/dropout_math.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/dropout.h"
#endif

namespace sg {
namespace {

// Returns the guard that keeps the tensors' device current for the caller's launch.
[[nodiscard]] DeviceGuard check_args(const char* op, const DropoutParams& params, const Tensor& in,
                                     const char* in_name, Tensor& out, const char* out_name) {
  SG_CHECK(params.p >= 0 && params.p <= 1, op, ": p is ", params.p, ", expected within [0, 1]");
  check::floating(op, in_name, in);
  check::shape(op, out_name, out, in.shape());
  check::same_dtype(op, {&in, &out});
  return check::same_device(op, {&in, &out});
}

// Forward and backward are the same masked scaling: y = x * mask * scale, dx = dy * mask * scale.
void run_dropout(const char* op, const DropoutParams& params, const Tensor& in, const char* in_name, Tensor& out,
                 const char* out_name, const Stream& stream) {
  const DeviceGuard on_device = check_args(op, params, in, in_name, out, out_name);
  if (in.numel() == 0) return;
  const float p = float(params.p), scale = math::dropout_scale(params.p);
  if (in.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (in.device().is_cpu())
    return cpu::dropout(in.dtype(), in.data(), out.data(), in.numel(), p, scale, params.seed, params.offset);
#if SLIDEGRADE_WITH_CUDA
  cuda::dropout(in.dtype(), in.data(), out.data(), in.numel(), p, scale, params.seed, params.offset, stream.handle());
#else
  (void)stream;
#endif
}

void run_drop_connect(const char* op, const DropoutParams& params, const Tensor& in, const char* in_name,
                      Tensor& out, const char* out_name, const Stream& stream) {
  const DeviceGuard on_device = check_args(op, params, in, in_name, out, out_name);
  SG_CHECK(in.rank() >= 1, op, ": ", in_name, " has shape ", in.shape().str(), ", expected [N, ...]");
  if (in.numel() == 0) return;
  const int64_t N = in.dim(0), per_sample = in.numel() / N;
  const float p = float(params.p), scale = math::dropout_scale(params.p);
  if (in.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (in.device().is_cpu())
    return cpu::drop_connect(in.dtype(), in.data(), out.data(), N, per_sample, p, scale, params.seed, params.offset);
#if SLIDEGRADE_WITH_CUDA
  cuda::drop_connect(in.dtype(), in.data(), out.data(), N, per_sample, p, scale, params.seed, params.offset,
                     stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace

void dropout_forward(const DropoutParams& params, const Tensor& x, Tensor& y, const Stream& stream) {
  run_dropout("dropout_forward", params, x, "x", y, "y", stream);
}

void dropout_backward(const DropoutParams& params, const Tensor& dy, Tensor& dx, const Stream& stream) {
  run_dropout("dropout_backward", params, dy, "dy", dx, "dx", stream);
}

void drop_connect_forward(const DropoutParams& params, const Tensor& x, Tensor& y, const Stream& stream) {
  run_drop_connect("drop_connect_forward", params, x, "x", y, "y", stream);
}

void drop_connect_backward(const DropoutParams& params, const Tensor& dy, Tensor& dx, const Stream& stream) {
  run_drop_connect("drop_connect_backward", params, dy, "dy", dx, "dx", stream);
}

}  // namespace sg
