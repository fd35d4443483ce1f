#pragma once
// Reference fully connected layer: the obvious triple loops, accumulating in acc_t<T>
// (double for the finite-difference tests). Row-major x [M, K], w [N, K], y [M, N].
#include <cstdint>

#include "core/half.h"

namespace sg::cpu::ref {

// y[m, n] = bias[n] + sum_k x[m, k] w[n, k]; bias may be nullptr.
template <class T>
void linear_forward(const T* x, const T* w, const T* bias, T* y, int64_t M, int64_t K, int64_t N) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      acc_t<T> acc = bias ? to_acc(bias[n]) : acc_t<T>(0);
      for (int64_t k = 0; k < K; ++k) acc += to_acc(x[m * K + k]) * to_acc(w[n * K + k]);
      y[m * N + n] = from_acc<T>(acc);
    }
}

// dx[m, k] = sum_n dy[m, n] w[n, k]
template <class T>
void linear_backward_input(const T* dy, const T* w, T* dx, int64_t M, int64_t K, int64_t N) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      acc_t<T> acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += to_acc(dy[m * N + n]) * to_acc(w[n * K + k]);
      dx[m * K + k] = from_acc<T>(acc);
    }
}

// dw[n, k] = sum_m dy[m, n] x[m, k]; dbias[n] = sum_m dy[m, n] (dbias may be nullptr).
template <class T>
void linear_backward_weight(const T* x, const T* dy, T* dw, T* dbias, int64_t M, int64_t K, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      acc_t<T> acc = 0;
      for (int64_t m = 0; m < M; ++m) acc += to_acc(dy[m * N + n]) * to_acc(x[m * K + k]);
      dw[n * K + k] = from_acc<T>(acc);
    }
    if (dbias) {
      acc_t<T> acc = 0;
      for (int64_t m = 0; m < M; ++m) acc += to_acc(dy[m * N + n]);
      dbias[n] = from_acc<T>(acc);
    }
  }
}

}  // namespace sg::cpu::ref
