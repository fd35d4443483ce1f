#include "kernels/cuda/activation.h"
#include "kernels/cuda/common.cuh"

namespace sg::cuda {
namespace {

// Each thread handles whole 16-byte vectors; a scalar tail covers n % vector size and
// unaligned pointers. Grid-stride so one launch serves any n.
template <class T, math::Activation K>
__global__ void activation_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, bool vectorised) {
  constexpr int V = Vec16<T>::size;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t vectors = n / V;
    for (int64_t i = first; i < vectors; i += stride) {
      Vec16<T> in = reinterpret_cast<const Vec16<T>*>(x)[i], out;
#pragma unroll
      for (int j = 0; j < V; ++j) out.v[j] = from_acc<T>(math::activation(K, to_acc(in.v[j])));
      reinterpret_cast<Vec16<T>*>(y)[i] = out;
    }
    done = vectors * V;
  }
  for (int64_t i = done + first; i < n; i += stride) y[i] = from_acc<T>(math::activation(K, to_acc(x[i])));
}

template <class T, math::Activation K>
__global__ void activation_backward_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                                           int64_t n, bool vectorised) {
  constexpr int V = Vec16<T>::size;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t vectors = n / V;
    for (int64_t i = first; i < vectors; i += stride) {
      Vec16<T> xv = reinterpret_cast<const Vec16<T>*>(x)[i], gv = reinterpret_cast<const Vec16<T>*>(dy)[i], out;
#pragma unroll
      for (int j = 0; j < V; ++j)
        out.v[j] = from_acc<T>(to_acc(gv.v[j]) * math::activation_derivative(K, to_acc(xv.v[j])));
      reinterpret_cast<Vec16<T>*>(dx)[i] = out;
    }
    done = vectors * V;
  }
  for (int64_t i = done + first; i < n; i += stride)
    dx[i] = from_acc<T>(to_acc(dy[i]) * math::activation_derivative(K, to_acc(x[i])));
}

constexpr int kThreads = 256;

}  // namespace

void activation_forward(math::Activation kind, DType dtype, const void* x, void* y, int64_t n, StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, "activation_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vectorised = aligned16(x) && aligned16(y);
    math::with_activation(kind, [&](auto k) {
      activation_forward_kernel<T, decltype(k)::value><<<grid_for(n / Vec16<T>::size + 1, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<T*>(y), n, vectorised);
    });
  });
  SG_CUDA_CHECK_LAUNCH("activation_forward");
}

void activation_backward(math::Activation kind, DType dtype, const void* x, const void* dy, void* dx, int64_t n,
                         StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, "activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vectorised = aligned16(x) && aligned16(dy) && aligned16(dx);
    math::with_activation(kind, [&](auto k) {
      activation_backward_kernel<T, decltype(k)::value><<<grid_for(n / Vec16<T>::size + 1, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n, vectorised);
    });
  });
  SG_CUDA_CHECK_LAUNCH("activation_backward");
}

}  // namespace sg::cuda
