#pragma once
// Reference activations: one obvious loop per direction. Templated so the tests can run them
// in double for finite differences.
#include <cstdint>

#include "core/half.h"
#include "kernels/scalar_math.h"

namespace sg::cpu::ref {

template <class T>
void activation_forward(math::Activation kind, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = from_acc<T>(math::activation(kind, to_acc(x[i])));
}

template <class T>
void activation_backward(math::Activation kind, const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = from_acc<T>(to_acc(dy[i]) * math::activation_derivative(kind, to_acc(x[i])));
}

}  // namespace sg::cpu::ref
