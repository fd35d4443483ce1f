#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/float_convert.h"

namespace sg::cpu {
namespace {

// Below this many elements a loop runs on the calling thread: waking the OpenMP team costs
// more than the work (the heads' small matrices).
constexpr int64_t kParallelThreshold = 1 << 15;

// sum over rows of a [M, N] matrix, in column blocks so the inner loop runs along a row.
void column_sums(const float* a, float* sums, int64_t M, int64_t N) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (M * N >= kParallelThreshold)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t n0 = b * kBlock, n1 = std::min(N, n0 + kBlock);
    float acc[kBlock] = {};
    for (int64_t m = 0; m < M; ++m) {
      const float* row = a + m * N;
#pragma omp simd
      for (int64_t n = n0; n < n1; ++n) acc[n - n0] += row[n];
    }
    for (int64_t n = n0; n < n1; ++n) sums[n] = acc[n - n0];
  }
}

template <class T>
void forward_typed(const void* x, const void* w, const void* bias, void* y, int64_t M, int64_t K, int64_t N) {
  const F32Input<T> xf(static_cast<const T*>(x), M * K), wf(static_cast<const T*>(w), N * K);
  F32Output<T> yf(static_cast<T*>(y), M * N);
  float* out = yf.get();
  if (bias) {
    // Start from the bias and let the GEMM add into it (beta = 1): one rounding at the end.
    const F32Input<T> bf(static_cast<const T*>(bias), N);
    const float* b = bf.get();
#pragma omp parallel for schedule(static) if (M * N >= kParallelThreshold)
    for (int64_t m = 0; m < M; ++m) std::copy(b, b + N, out + m * N);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, xf.get(), int(K), wf.get(),
              int(K), bias ? 1.0f : 0.0f, out, int(N));
  yf.store();
}

template <class T>
void backward_input_typed(const void* dy, const void* w, void* dx, int64_t M, int64_t K, int64_t N) {
  const F32Input<T> dyf(static_cast<const T*>(dy), M * N), wf(static_cast<const T*>(w), N * K);
  F32Output<T> dxf(static_cast<T*>(dx), M * K);
  // [M, N] x [N, K]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(K), int(N), 1.0f, dyf.get(), int(N), wf.get(),
              int(K), 0.0f, dxf.get(), int(K));
  dxf.store();
}

template <class T>
void backward_weight_typed(const void* x, const void* dy, void* dw, void* dbias, int64_t M, int64_t K, int64_t N) {
  const F32Input<T> xf(static_cast<const T*>(x), M * K), dyf(static_cast<const T*>(dy), M * N);
  F32Output<T> dwf(static_cast<T*>(dw), N * K);
  // [N, M] (dy transposed) x [M, K]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(N), int(K), int(M), 1.0f, dyf.get(), int(N), xf.get(),
              int(K), 0.0f, dwf.get(), int(K));
  dwf.store();
  if (dbias) {
    F32Output<T> dbf(static_cast<T*>(dbias), N);
    column_sums(dyf.get(), dbf.get(), M, N);
    dbf.store();
  }
}

}  // namespace

void linear_forward(DType dtype, const void* x, const void* w, const void* bias, void* y, int64_t M, int64_t K,
                    int64_t N) {
  dispatch_floating(dtype, "linear_forward", [&](auto tag) {
    forward_typed<typename decltype(tag)::type>(x, w, bias, y, M, K, N);
  });
}

void linear_backward_input(DType dtype, const void* dy, const void* w, void* dx, int64_t M, int64_t K, int64_t N) {
  dispatch_floating(dtype, "linear_backward_input", [&](auto tag) {
    backward_input_typed<typename decltype(tag)::type>(dy, w, dx, M, K, N);
  });
}

void linear_backward_weight(DType dtype, const void* x, const void* dy, void* dw, void* dbias, int64_t M, int64_t K,
                            int64_t N) {
  dispatch_floating(dtype, "linear_backward_weight", [&](auto tag) {
    backward_weight_typed<typename decltype(tag)::type>(x, dy, dw, dbias, M, K, N);
  });
}

}  // namespace sg::cpu
