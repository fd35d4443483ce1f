#pragma once
// Reference bias + activation on [M, C] rows; bias and dbias are acc_t<T> [C] (float, or
// double for the finite-difference tests). dbias sums in double.
#include <cstdint>

#include "core/half.h"
#include "kernels/scalar_math.h"

namespace sg::cpu::ref {

template <class T>
void bias_activation_forward(math::Activation act, const T* x, const acc_t<T>* bias, T* y, int64_t M, int64_t C) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c) y[m * C + c] = from_acc<T>(math::activation(act, to_acc(x[m * C + c]) + bias[c]));
}

template <class T>
void bias_activation_backward(math::Activation act, const T* x, const acc_t<T>* bias, const T* dy, T* dx,
                              acc_t<T>* dbias, int64_t M, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t m = 0; m < M; ++m) {
      const acc_t<T> dz = to_acc(dy[m * C + c]) * math::activation_derivative(act, to_acc(x[m * C + c]) + bias[c]);
      dx[m * C + c] = from_acc<T>(dz);
      sum += double(dz);
    }
    dbias[c] = acc_t<T>(sum);
  }
}

}  // namespace sg::cpu::ref
