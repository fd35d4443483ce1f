#include "kernels/linear.h"

#include <climits>

#include "kernels/check.h"
#include "kernels/cpu/linear.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/linear.h"
#endif

namespace sg {
namespace {

// M, K, N from x [M, K] and w [N, K]; checks ranks, dtypes, devices and that no extent is
// empty or too large for a BLAS int.
struct LinearShape {
  int64_t M, K, N;
};

LinearShape linear_shape(const char* op, const char* x_name, const Tensor& x, const Tensor& w) {
  check::floating(op, x_name, x);
  check::rank(op, x_name, x, 2);
  check::rank(op, "w", w, 2);
  const LinearShape s{x.dim(0), x.dim(1), w.dim(0)};
  SG_CHECK(s.M > 0 && s.K > 0 && s.N > 0, op, ": empty extents are not supported (", x_name, " ",
           x.shape().str(), ", w ", w.shape().str(), ")");
  SG_CHECK(s.M <= INT_MAX && s.K <= INT_MAX && s.N <= INT_MAX, op, ": extents over 2^31 (", x_name, " ",
           x.shape().str(), ", w ", w.shape().str(), ")");
  return s;
}

}  // namespace

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, const Stream& stream) {
  constexpr const char* op = "linear_forward";
  const LinearShape s = linear_shape(op, "x", x, w);
  SG_CHECK(w.dim(1) == s.K, op, ": w has shape ", w.shape().str(), ", expected [Nout, ", s.K, "] (x is ",
           x.shape().str(), ")");
  if (bias) check::shape(op, "bias", *bias, {s.N});
  check::shape(op, "y", y, {s.M, s.N});
  check::same_dtype(op, {&x, &w, bias, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &w, bias, &y});
  const void* b = bias ? bias->data() : nullptr;
  if (x.device().is_cpu()) return cpu::linear_forward(x.dtype(), x.data(), w.data(), b, y.data(), s.M, s.K, s.N);
#if SLIDEGRADE_WITH_CUDA
  cuda::linear_forward(x.dtype(), x.device().index, x.data(), w.data(), b, y.data(), s.M, s.K, s.N, stream.handle());
#else
  (void)stream;
#endif
}

void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, const Stream& stream) {
  constexpr const char* op = "linear_backward_input";
  check::floating(op, "dy", dy);
  check::rank(op, "dy", dy, 2);
  check::rank(op, "w", w, 2);
  SG_CHECK(w.dim(0) == dy.dim(1), op, ": w has shape ", w.shape().str(), ", expected [", dy.dim(1),
           ", K] (dy is ", dy.shape().str(), ")");
  const int64_t M = dy.dim(0), N = dy.dim(1), K = w.dim(1);
  SG_CHECK(M > 0 && K > 0 && N > 0 && M <= INT_MAX && K <= INT_MAX && N <= INT_MAX, op,
           ": extents must be in [1, 2^31) (dy ", dy.shape().str(), ", w ", w.shape().str(), ")");
  check::shape(op, "dx", dx, {M, K});
  check::same_dtype(op, {&dy, &w, &dx});
  const DeviceGuard on_device = check::same_device(op, {&dy, &w, &dx});
  if (dy.device().is_cpu()) return cpu::linear_backward_input(dy.dtype(), dy.data(), w.data(), dx.data(), M, K, N);
#if SLIDEGRADE_WITH_CUDA
  cuda::linear_backward_input(dy.dtype(), dy.device().index, dy.data(), w.data(), dx.data(), M, K, N, stream.handle());
#else
  (void)stream;
#endif
}

void linear_backward_weight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias, const Stream& stream) {
  constexpr const char* op = "linear_backward_weight";
  check::floating(op, "x", x);
  check::rank(op, "x", x, 2);
  check::rank(op, "dy", dy, 2);
  SG_CHECK(dy.dim(0) == x.dim(0), op, ": dy has shape ", dy.shape().str(), ", expected [", x.dim(0),
           ", Nout] (x is ", x.shape().str(), ")");
  const int64_t M = x.dim(0), K = x.dim(1), N = dy.dim(1);
  SG_CHECK(M > 0 && K > 0 && N > 0 && M <= INT_MAX && K <= INT_MAX && N <= INT_MAX, op,
           ": extents must be in [1, 2^31) (x ", x.shape().str(), ", dy ", dy.shape().str(), ")");
  check::shape(op, "dw", dw, {N, K});
  if (dbias) check::shape(op, "dbias", *dbias, {N});
  check::same_dtype(op, {&x, &dy, &dw, dbias});
  const DeviceGuard on_device = check::same_device(op, {&x, &dy, &dw, dbias});
  void* db = dbias ? dbias->data() : nullptr;
  if (x.device().is_cpu()) return cpu::linear_backward_weight(x.dtype(), x.data(), dy.data(), dw.data(), db, M, K, N);
#if SLIDEGRADE_WITH_CUDA
  cuda::linear_backward_weight(x.dtype(), x.device().index, x.data(), dy.data(), dw.data(), db, M, K, N,
                               stream.handle());
#else
  (void)stream;
#endif
}

size_t cublas_workspace_bytes_held(const Device& device) {
#if SLIDEGRADE_WITH_CUDA
  if (device.is_cuda()) return cuda::cublas_workspace_bytes_held(device.index);
#endif
  (void)device;
  return 0;
}

}  // namespace sg
