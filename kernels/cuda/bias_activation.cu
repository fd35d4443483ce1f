// Bias + activation on [M, C] rows. Forward: one elementwise pass. Backward: one pass that
// writes dx and per-block partial sums of dx per channel, then an ordered finalize (dbias).
#include "core/tensor.h"
#include "kernels/cuda/bias_activation.h"
#include "kernels/cuda/channel_reduce.cuh"

namespace sg::cuda {
namespace {

template <class T, math::Activation K>
struct ForwardOp {
  const T* x;
  const float* bias;
  T* y;
  template <int V>
  __device__ void apply(int64_t base, int64_t c) const {
    float v[V];
    load_floats<T, V>(x + base, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = math::activation(K, v[j] + __ldg(bias + c + j));
    store_floats<T, V>(y + base, v);
  }
};

// dx = dy * act'(x + bias), written in the reduction pass; a accumulates dx, b is unused.
template <class T, int VC, math::Activation K>
struct BackwardOp {
  const T* x;
  const float* bias;
  const T* dy;
  T* dx;
  int64_t C;
  struct Context {
    float bias[VC];
  };
  __device__ Context context(int64_t c0) const {
    Context ctx;
#pragma unroll
    for (int j = 0; j < VC; ++j) ctx.bias[j] = bias[c0 + j];
    return ctx;
  }
  __device__ void accumulate(const Context& ctx, int64_t m, int64_t c0, float (&a)[VC], float (&)[VC]) const {
    float xv[VC], gv[VC];
    load_floats<T, VC>(x + m * C + c0, xv);
    load_floats<T, VC>(dy + m * C + c0, gv);
#pragma unroll
    for (int j = 0; j < VC; ++j) {
      gv[j] *= math::activation_derivative(K, xv[j] + ctx.bias[j]);
      a[j] += gv[j];
    }
    store_floats<T, VC>(dx + m * C + c0, gv);
  }
};

__global__ void dbias_finalize_kernel(const float* __restrict__ partial_a, const float* __restrict__ partial_b,
                                      unsigned row_blocks, int64_t C, float* __restrict__ dbias) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double a, b;
  sum_partials(partial_a, partial_b, row_blocks, C, c, a, b);
  dbias[c] = float(a);
}

template <class T, class Fn>
void with_width(int64_t C, std::initializer_list<const void*> pointers, Fn&& fn) {
  if (channels_vectorisable<T>(C, pointers))
    fn(std::integral_constant<int, Vec16<T>::size>{});
  else
    fn(std::integral_constant<int, 1>{});
}

}  // namespace

void bias_activation_forward(math::Activation act, DType dtype, const void* x_raw, const float* bias, void* y_raw,
                             int64_t M, int64_t C, StreamHandle stream) {
  if (M == 0 || C == 0) return;
  dispatch_floating(dtype, "bias_activation_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_raw);
    T* y = static_cast<T*>(y_raw);
    with_width<T>(C, {x, y}, [&](auto width) {
      constexpr int V = decltype(width)::value;
      math::with_activation(act, [&](auto k) {
        launch_channel_elementwise<V>(ForwardOp<T, decltype(k)::value>{x, bias, y}, M * C, C, stream);
      });
    });
  });
  SG_CUDA_CHECK_LAUNCH("bias_activation_forward");
}

void bias_activation_backward(math::Activation act, DType dtype, const void* x_raw, const float* bias,
                              const void* dy_raw, void* dx_raw, float* dbias, int64_t M, int64_t C,
                              StreamHandle stream) {
  if (C == 0) return;
  dispatch_floating(dtype, "bias_activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_raw);
    const T* dy = static_cast<const T*>(dy_raw);
    T* dx = static_cast<T*>(dx_raw);
    with_width<T>(C, {x, dy, dx}, [&](auto width) {
      constexpr int V = decltype(width)::value;
      const ChannelLayout L = channel_layout(M, C, V);
      Tensor partial = Tensor::empty({channel_reduce_workspace_floats(L, C)}, DType::f32, Device::cuda(current_device()),
                                     stream, "bias_activation partial sums");
      float* partial_a = partial.data_as<float>();
      float* partial_b = partial_a + int64_t(L.row_blocks) * C;
      math::with_activation(act, [&](auto k) {
        launch_channel_partial_sums<V>(BackwardOp<T, V, decltype(k)::value>{x, bias, dy, dx, C}, M, C, L, partial_a,
                                       partial_b, stream);
      });
      SG_CUDA_CHECK_LAUNCH("bias_activation_backward (dx, partial sums)");
      constexpr int kThreads = 128;
      dbias_finalize_kernel<<<unsigned((C + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
          partial_a, partial_b, L.row_blocks, C, dbias);
      SG_CUDA_CHECK_LAUNCH("bias_activation_backward (dbias)");
    });
  });
}

}  // namespace sg::cuda
