#include "kernels/linear.h"

#include <climits>

#include "core/meta_device.h"
#include "kernels/check.h"
#include "kernels/cuda_kernel_paths.h"
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

// One GEMM of an M x K by K x N product on meta (core/meta_device.h), as the target runs it. The
// CPU's BLAS takes no scratch from our allocator. On CUDA it is a cuBLAS GEMM (kernels/cuda/linear.cu):
// without a bf16 GEMM (before sm_70) the three matrices are widened to f32 copies, live together;
// then the first GEMM of the process takes the handle's workspace, kept from then on. Forward,
// input gradient and weight gradient all multiply matrices of M*K, N*K and M*N elements.
void meta_gemm(const char* op, DType dtype, int64_t M, int64_t K, int64_t N, bool forward) {
  meta::Session& session = meta::Session::current(op);
  if (forward) session.add_macs(M * K * N);
  const meta::Target& target = session.target();
  if (!target.cuda) return;
  std::vector<Tensor> widened;  // live until the GEMM has run
  if (dtype == DType::bf16 && target.cuda_arch < kCublasBf16MinArch)
    for (const int64_t floats : {M * K, N * K, M * N})
      widened.push_back(Tensor::empty({floats}, DType::f32, Device::meta(), "bf16 GEMM operand in f32"));
  if (!target.cublas_workspace_held && !session.keeps("cuBLAS workspace"))
    session.keep("cuBLAS workspace",
                 Tensor::empty({int64_t(cublas_workspace_bytes(target.cuda_arch))}, DType::u8, Device::meta(), "cuBLAS workspace"));
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
  if (x.device().is_meta()) return meta_gemm(op, x.dtype(), s.M, s.K, s.N, true);
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
  if (dy.device().is_meta()) return meta_gemm(op, dy.dtype(), M, K, N, false);
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
  if (x.device().is_meta()) return meta_gemm(op, x.dtype(), M, K, N, false);
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
