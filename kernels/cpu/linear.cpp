#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/half.h"

namespace sg::cpu {
namespace {

// Below this many elements a loop runs on the calling thread: waking the OpenMP team costs
// more than the work (the heads' small matrices).
constexpr int64_t kParallelThreshold = 1 << 15;

// f32 data for BLAS: the pointer itself for float, a converted copy for Half/BFloat16.
template <class T>
class AsFloat {
 public:
  AsFloat(const void* data, int64_t n) {
    if constexpr (std::is_same_v<T, float>) {
      ptr_ = static_cast<const float*>(data);
    } else {
      copy_.resize(size_t(n));
      const T* src = static_cast<const T*>(data);
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) copy_[size_t(i)] = to_acc(src[i]);
      ptr_ = copy_.data();
    }
  }
  const float* get() const { return ptr_; }

 private:
  std::vector<float> copy_;
  const float* ptr_ = nullptr;
};

// An f32 output: written in place for float, through scratch and rounded once for Half/BFloat16.
template <class T>
class FloatOutput {
 public:
  FloatOutput(void* data, int64_t n) : data_(data), n_(n) {
    if constexpr (!std::is_same_v<T, float>) scratch_.resize(size_t(n));
  }
  float* get() {
    if constexpr (std::is_same_v<T, float>) return static_cast<float*>(data_);
    else return scratch_.data();
  }
  void store() {
    if constexpr (!std::is_same_v<T, float>) {
      T* dst = static_cast<T*>(data_);
      const float* src = scratch_.data();
      const int64_t n = n_;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) dst[i] = from_acc<T>(src[i]);
    }
  }

 private:
  void* data_;
  int64_t n_;
  std::vector<float> scratch_;
};

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
  AsFloat<T> xf(x, M * K), wf(w, N * K);
  FloatOutput<T> yf(y, M * N);
  float* out = yf.get();
  if (bias) {
    // Start from the bias and let the GEMM add into it (beta = 1): one rounding at the end.
    AsFloat<T> bf(bias, N);
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
  AsFloat<T> dyf(dy, M * N), wf(w, N * K);
  FloatOutput<T> dxf(dx, M * K);
  // [M, N] x [N, K]
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(K), int(N), 1.0f, dyf.get(), int(N), wf.get(),
              int(K), 0.0f, dxf.get(), int(K));
  dxf.store();
}

template <class T>
void backward_weight_typed(const void* x, const void* dy, void* dw, void* dbias, int64_t M, int64_t K, int64_t N) {
  AsFloat<T> xf(x, M * K), dyf(dy, M * N);
  FloatOutput<T> dwf(dw, N * K);
  // [N, M] (dy transposed) x [M, K]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(N), int(K), int(M), 1.0f, dyf.get(), int(N), xf.get(),
              int(K), 0.0f, dwf.get(), int(K));
  dwf.store();
  if (dbias) {
    FloatOutput<T> dbf(dbias, N);
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
