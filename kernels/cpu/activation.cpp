#include "kernels/cpu/activation.h"

namespace sg::cpu {
namespace {

// Switching on the kind outside the loop lets each loop body inline one formula.
template <class T, math::Activation K>
void forward_loop(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = from_acc<T>(math::activation(K, to_acc(x[i])));
}

template <class T, math::Activation K>
void backward_loop(const T* x, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] = from_acc<T>(to_acc(dy[i]) * math::activation_derivative(K, to_acc(x[i])));
}

}  // namespace

void activation_forward(math::Activation kind, DType dtype, const void* x, void* y, int64_t n) {
  dispatch_floating(dtype, "activation_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(kind, [&](auto k) { forward_loop<T, decltype(k)::value>(static_cast<const T*>(x), static_cast<T*>(y), n); });
  });
}

void activation_backward(math::Activation kind, DType dtype, const void* x, const void* dy, void* dx, int64_t n) {
  dispatch_floating(dtype, "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(kind, [&](auto k) {
      backward_loop<T, decltype(k)::value>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n);
    });
  });
}

}  // namespace sg::cpu
