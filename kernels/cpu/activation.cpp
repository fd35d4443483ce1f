#include "kernels/cpu/activation.h"

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/float_convert.h"

namespace sg::cpu {
namespace {

// Below this many elements one thread is faster than waking the others.
constexpr int64_t kParallelMin = 32768;
// f16/bf16 run in blocks converted to f32 (F16C where the CPU has it), then back.
constexpr int64_t kBlock = 4096;

// Each kind gets its own loop (K is a template argument), so the formula inlines and the
// loop vectorises (libmvec for exp/tanh/log1p).
template <class T, math::Activation K>
void forward_loop(const T* x, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = math::activation(K, x[i]);
  } else {
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t b = 0; b < blocks; ++b) {
      float v[kBlock];
      const int64_t first = b * kBlock, count = std::min(kBlock, n - first);
      to_f32(x + first, v, count);
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) v[i] = math::activation(K, v[i]);
      from_f32(v, y + first, count);
    }
  }
}

template <class T, math::Activation K>
void backward_loop(const T* x, const T* dy, T* dx, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * math::activation_derivative(K, x[i]);
  } else {
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t b = 0; b < blocks; ++b) {
      float xv[kBlock], g[kBlock];
      const int64_t first = b * kBlock, count = std::min(kBlock, n - first);
      to_f32(x + first, xv, count);
      to_f32(dy + first, g, count);
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) g[i] *= math::activation_derivative(K, xv[i]);
      from_f32(g, dx + first, count);
    }
  }
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
