// Batch norm (+ fused activation) on [M, C] rows, NHWC. Training forward: partial moments (count,
// mean, M2) per block -> finalize (Chan's merge in double: mean, invstd, running statistics) ->
// apply. Backward: partial sums of dz and dz * xhat -> finalize (dgamma, dbeta, coefficients) ->
// dx, recomputing dz from x.
#include "core/tensor.h"
#include "kernels/batch_norm.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/channel_reduce.cuh"

namespace sg::cuda {
namespace {

// mean, invstd and the running statistics from the partial moments of x - x0 (channel_reduce.cuh).
template <class T>
__global__ void stats_finalize_kernel(const float* __restrict__ partial_mean, const float* __restrict__ partial_m2,
                                      unsigned row_blocks, int rows_per_step, const T* __restrict__ x, int64_t M,
                                      int64_t C, double eps, double momentum, float* __restrict__ running_mean,
                                      float* __restrict__ running_var, float* __restrict__ saved_mean,
                                      float* __restrict__ saved_invstd) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double shifted_mean, m2;
  merge_partial_moments(partial_mean, partial_m2, row_blocks, rows_per_step, M, C, c, shifted_mean, m2);
  const double mean = double(to_acc(x[c])) + shifted_mean;
  const double var = m2 < 0 ? 0.0 : m2 / double(M);  // M2 >= 0 but for rounding; NaN stays NaN
  saved_mean[c] = float(mean);
  saved_invstd[c] = float(1.0 / sqrt(var + eps));
  running_mean[c] = float((1 - momentum) * double(running_mean[c]) + momentum * mean);
  running_var[c] = float((1 - momentum) * double(running_var[c]) + momentum * var * double(M) / double(M - 1));
}

__global__ void eval_invstd_kernel(const float* __restrict__ running_var, double eps, int64_t C,
                                   float* __restrict__ invstd) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = float(1.0 / sqrt(double(running_var[c]) + eps));
}

// y = act((x - mean) * invstd * gamma + beta)
template <class T, math::Activation K>
struct ApplyOp {
  const T* x;
  T* y;
  const float* mean;
  const float* invstd;
  const float* gamma;
  const float* beta;
  template <int V>
  __device__ void apply(int64_t base, int64_t c) const {
    float v[V];
    load_floats<T, V>(x + base, v);
#pragma unroll
    for (int j = 0; j < V; ++j)
      v[j] = math::activation(K, (v[j] - __ldg(mean + c + j)) * __ldg(invstd + c + j) * __ldg(gamma + c + j) +
                                     __ldg(beta + c + j));
    store_floats<T, V>(y + base, v);
  }
};

// Per-channel values a thread needs in backward, kept in registers.
template <int VC>
struct ChannelParams {
  float mean[VC], invstd[VC], gamma[VC], beta[VC];
};

template <int VC>
__device__ ChannelParams<VC> load_params(const float* mean, const float* invstd, const float* gamma,
                                         const float* beta, int64_t c0) {
  ChannelParams<VC> p;
#pragma unroll
  for (int j = 0; j < VC; ++j) {
    p.mean[j] = mean[c0 + j];
    p.invstd[j] = invstd[c0 + j];
    p.gamma[j] = gamma[c0 + j];
    p.beta[j] = beta[c0 + j];
  }
  return p;
}

// sum dz and sum dz * xhat, dz = dy * act'(xhat * gamma + beta).
template <class T, int VC, math::Activation K>
struct GradSumsOp {
  const T* x;
  const T* dy;
  const float* mean;
  const float* invstd;
  const float* gamma;
  const float* beta;
  int64_t C;
  using Context = ChannelParams<VC>;
  __device__ Context context(int64_t c0) const { return load_params<VC>(mean, invstd, gamma, beta, c0); }
  __device__ void accumulate(const Context& p, int64_t m, int64_t c0, float (&a)[VC], float (&b)[VC]) const {
    float xv[VC], gv[VC];
    load_floats<T, VC>(x + m * C + c0, xv);
    load_floats<T, VC>(dy + m * C + c0, gv);
#pragma unroll
    for (int j = 0; j < VC; ++j) {
      const float xhat = (xv[j] - p.mean[j]) * p.invstd[j];
      const float dz = gv[j] * math::activation_derivative(K, xhat * p.gamma[j] + p.beta[j]);
      a[j] += dz;
      b[j] += dz * xhat;
    }
  }
};

// dgamma, dbeta, and the dx coefficients [3, C]: mean dz, mean dz * xhat (0 in evaluation
// mode, where the statistics are constants), gamma * invstd.
__global__ void grad_finalize_kernel(const float* __restrict__ partial_a, const float* __restrict__ partial_b,
                                     unsigned row_blocks, int64_t M, int64_t C, bool training,
                                     const float* __restrict__ gamma, const float* __restrict__ invstd,
                                     float* __restrict__ dgamma, float* __restrict__ dbeta,
                                     float* __restrict__ coefficients) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double a, b;
  sum_partials(partial_a, partial_b, row_blocks, C, c, a, b);
  dbeta[c] = float(a);
  dgamma[c] = float(b);
  coefficients[c] = training ? float(a / double(M)) : 0.0f;
  coefficients[C + c] = training ? float(b / double(M)) : 0.0f;
  coefficients[2 * C + c] = gamma[c] * invstd[c];
}

// dx = (dz - mean_dz - xhat * mean_dz_xhat) * gamma * invstd
template <class T, math::Activation K>
struct DxOp {
  const T* x;
  const T* dy;
  T* dx;
  const float* mean;
  const float* invstd;
  const float* gamma;
  const float* beta;
  const float* coefficients;  // [3, C]
  int64_t C;
  template <int V>
  __device__ void apply(int64_t base, int64_t c) const {
    float xv[V], gv[V];
    load_floats<T, V>(x + base, xv);
    load_floats<T, V>(dy + base, gv);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int64_t k = c + j;
      const float xhat = (xv[j] - __ldg(mean + k)) * __ldg(invstd + k);
      const float dz = gv[j] * math::activation_derivative(K, xhat * __ldg(gamma + k) + __ldg(beta + k));
      xv[j] = (dz - __ldg(coefficients + k) - xhat * __ldg(coefficients + C + k)) * __ldg(coefficients + 2 * C + k);
    }
    store_floats<T, V>(dx + base, xv);
  }
};

constexpr int kFinalizeThreads = 128;

unsigned finalize_blocks(int64_t C) { return unsigned((C + kFinalizeThreads - 1) / kFinalizeThreads); }

// Calls fn(std::integral_constant<int, V>) with V the vector width usable for these pointers.
template <class T, class Fn>
void with_width(int64_t C, std::initializer_list<const void*> pointers, Fn&& fn) {
  if (channels_vectorisable<T>(C, pointers))
    fn(std::integral_constant<int, Vec16<T>::size>{});
  else
    fn(std::integral_constant<int, 1>{});
}

template <class T>
void apply_forward(const T* x, T* y, const float* mean, const float* invstd, const float* gamma, const float* beta,
                   int64_t M, int64_t C, math::Activation act, cudaStream_t stream) {
  with_width<T>(C, {x, y}, [&](auto width) {
    constexpr int V = decltype(width)::value;
    math::with_activation(act, [&](auto k) {
      launch_channel_elementwise<V>(ApplyOp<T, decltype(k)::value>{x, y, mean, invstd, gamma, beta}, M * C, C,
                                    stream);
    });
  });
}

}  // namespace

void batch_norm_forward_train(DType dtype, const void* x_raw, const float* gamma, const float* beta,
                              float* running_mean, float* running_var, void* y_raw, float* saved_mean,
                              float* saved_invstd, int64_t M, int64_t C, double eps, double momentum,
                              math::Activation act, StreamHandle stream) {
  if (M == 0 || C == 0) return;
  dispatch_floating(dtype, "batch_norm_forward_train", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_raw);
    T* y = static_cast<T*>(y_raw);
    with_width<T>(C, {x}, [&](auto width) {
      constexpr int VC = decltype(width)::value;
      const ChannelLayout L = channel_layout(M, C, VC);
      Tensor partial = Tensor::empty({channel_reduce_workspace_floats(L, C)}, DType::f32, Device::cuda(current_device()),
                                     stream, "batch_norm partial moments");
      float* partial_mean = partial.data_as<float>();
      float* partial_m2 = partial_mean + int64_t(L.row_blocks) * C;
      launch_channel_partial_moments<T, VC>(x, M, C, L, partial_mean, partial_m2, stream);
      SG_CUDA_CHECK_LAUNCH("batch_norm_forward_train (partial moments)");
      stats_finalize_kernel<T><<<finalize_blocks(C), kFinalizeThreads, 0, stream>>>(
          partial_mean, partial_m2, L.row_blocks, L.rows_per_step, x, M, C, eps, momentum, running_mean,
          running_var, saved_mean, saved_invstd);
      SG_CUDA_CHECK_LAUNCH("batch_norm_forward_train (statistics)");
    });
    apply_forward<T>(x, y, saved_mean, saved_invstd, gamma, beta, M, C, act, stream);
    SG_CUDA_CHECK_LAUNCH("batch_norm_forward_train (apply)");
  });
}

void batch_norm_forward_eval(DType dtype, const void* x_raw, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, void* y_raw, int64_t M, int64_t C,
                             double eps, math::Activation act, StreamHandle stream) {
  if (M == 0 || C == 0) return;
  Tensor invstd = Tensor::empty({C}, DType::f32, Device::cuda(current_device()), stream, "batch_norm invstd");
  eval_invstd_kernel<<<finalize_blocks(C), kFinalizeThreads, 0, stream>>>(running_var, eps, C,
                                                                           invstd.data_as<float>());
  SG_CUDA_CHECK_LAUNCH("batch_norm_forward_eval (invstd)");
  dispatch_floating(dtype, "batch_norm_forward_eval", [&](auto tag) {
    using T = typename decltype(tag)::type;
    apply_forward<T>(static_cast<const T*>(x_raw), static_cast<T*>(y_raw), running_mean, invstd.data_as<float>(),
                     gamma, beta, M, C, act, stream);
  });
  SG_CUDA_CHECK_LAUNCH("batch_norm_forward_eval (apply)");
}

void batch_norm_backward(DType dtype, const void* x_raw, const void* dy_raw, const float* gamma, const float* beta,
                         const float* mean_or_running_mean, const float* invstd_or_running_var, bool training,
                         double eps, void* dx_raw, float* dgamma, float* dbeta, int64_t M, int64_t C,
                         math::Activation act, StreamHandle stream) {
  if (C == 0) return;
  const Device device = Device::cuda(current_device());
  // Scratch: coefficients [3, C], then the eval invstd [C].
  Tensor scratch = Tensor::empty({cuda_batch_norm_backward_scratch_floats(C)}, DType::f32, device, stream,
                                 "batch_norm backward scratch");
  float* coefficients = scratch.data_as<float>();
  const float* mean = mean_or_running_mean;
  const float* invstd = invstd_or_running_var;
  if (!training) {
    float* eval_invstd = coefficients + 3 * C;
    eval_invstd_kernel<<<finalize_blocks(C), kFinalizeThreads, 0, stream>>>(invstd_or_running_var, eps, C,
                                                                             eval_invstd);
    SG_CUDA_CHECK_LAUNCH("batch_norm_backward (invstd)");
    invstd = eval_invstd;
  }
  dispatch_floating(dtype, "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(x_raw);
    const T* dy = static_cast<const T*>(dy_raw);
    T* dx = static_cast<T*>(dx_raw);
    with_width<T>(C, {x, dy, dx}, [&](auto width) {
      constexpr int V = decltype(width)::value;
      const ChannelLayout L = channel_layout(M, C, V);
      Tensor partial = Tensor::empty({channel_reduce_workspace_floats(L, C)}, DType::f32, device, stream, "batch_norm partial sums");
      float* partial_a = partial.data_as<float>();
      float* partial_b = partial_a + int64_t(L.row_blocks) * C;
      math::with_activation(act, [&](auto k) {
        constexpr math::Activation K = decltype(k)::value;
        launch_channel_partial_sums<V>(GradSumsOp<T, V, K>{x, dy, mean, invstd, gamma, beta, C}, M, C, L, partial_a,
                                       partial_b, stream);
        SG_CUDA_CHECK_LAUNCH("batch_norm_backward (partial sums)");
        grad_finalize_kernel<<<finalize_blocks(C), kFinalizeThreads, 0, stream>>>(
            partial_a, partial_b, L.row_blocks, M, C, training, gamma, invstd, dgamma, dbeta, coefficients);
        SG_CUDA_CHECK_LAUNCH("batch_norm_backward (finalize)");
        if (M > 0)
          launch_channel_elementwise<V>(DxOp<T, K>{x, dy, dx, mean, invstd, gamma, beta, coefficients, C}, M * C, C,
                                        stream);
        SG_CUDA_CHECK_LAUNCH("batch_norm_backward (dx)");
      });
    });
  });
}

}  // namespace sg::cuda
