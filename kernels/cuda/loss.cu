#include "kernels/cuda/common.cuh"
#include "kernels/cuda/deterministic_reduce.cuh"
#include "kernels/cuda/loss.h"

namespace sg::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kReduceThreads = 1024;  // the one block that sums a reduced loss
// Kernels launched with kReduceThreads carry __launch_bounds__(kReduceThreads): without it ptxas
// may use more than 64 registers a thread, and a 1024-thread launch then fails on sm_75
// (cudaErrorLaunchOutOfResources). cross_entropy_forward_kernel<float> already needs 57 there.

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

// Max, sum of exp(z - max) and sum of z over one row, computed by a whole warp (lanes stride
// the classes); every lane gets the results.
template <class T>
__device__ void row_stats(const T* __restrict__ z, int64_t C, int lane, float& z_max, float& sum_exp, float& sum_z) {
  float m = -INFINITY;
  for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, to_acc(z[c]));
  z_max = warp_max(m);
  float se = 0, sz = 0;
  for (int64_t c = lane; c < C; c += 32) {
    const float v = to_acc(z[c]);
    se += math::exp_(v - z_max);
    sz += v;
  }
  sum_exp = warp_sum(se);
  sum_z = warp_sum(sz);
}

// One warp per row. reduce == false: loss[row] per sample (any grid). reduce == true: launched
// as ONE block; each warp adds up its rows in order, then the block adds the warps in order,
// and loss[0] = total * out_scale.
template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    cross_entropy_forward_kernel(const T* __restrict__ logits, const int32_t* __restrict__ targets,
                                             float* __restrict__ loss, int64_t N, int64_t C, float eps, bool reduce,
                                             float out_scale) {
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t first_row = int64_t(blockIdx.x) * warps_per_block + threadIdx.x / 32;
  const int64_t row_stride = int64_t(gridDim.x) * warps_per_block;
  float mine = 0;
  for (int64_t row = first_row; row < N; row += row_stride) {
    const T* z = logits + row * C;
    float z_max, sum_exp, sum_z;
    row_stats(z, C, lane, z_max, sum_exp, sum_z);
    const int32_t t = targets[row];
    const float l = (t < 0 || t >= C) ? quiet_nan()
                                      : math::cross_entropy_row(z_max + math::log_(sum_exp), float(to_acc(z[t])),
                                                                sum_z / float(C), eps);
    if (!reduce && lane == 0) loss[row] = l;
    mine += l;
  }
  if (!reduce) return;
  const float total = block_sum(lane == 0 ? mine : 0.0f);
  if (threadIdx.x == 0) loss[0] = total * out_scale;
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ logits, const int32_t* __restrict__ targets,
                                              T* __restrict__ dlogits, int64_t N, int64_t C, float eps, float scale) {
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t row_stride = int64_t(gridDim.x) * warps_per_block;
  for (int64_t row = int64_t(blockIdx.x) * warps_per_block + threadIdx.x / 32; row < N; row += row_stride) {
    const T* z = logits + row * C;
    T* dz = dlogits + row * C;
    float z_max, sum_exp, sum_z;
    row_stats(z, C, lane, z_max, sum_exp, sum_z);
    const int32_t t = targets[row];
    const bool valid = t >= 0 && t < C;
    const float inv_sum = 1.0f / sum_exp;
    for (int64_t c = lane; c < C; c += 32) {
      const float p = math::exp_(float(to_acc(z[c])) - z_max) * inv_sum;
      dz[c] = from_acc<T>(valid ? scale * math::cross_entropy_grad(p, c == t, eps, float(C)) : quiet_nan());
    }
  }
}

template <class T, math::PointwiseLoss K>
__global__ void pointwise_loss_each_kernel(const T* __restrict__ x, const float* __restrict__ t,
                                           float* __restrict__ loss, int64_t n, float beta) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    loss[i] = math::pointwise_loss(K, float(to_acc(x[i])), t[i], beta);
}

// ONE block: thread j adds elements j, j + blockDim, ... then the block adds the threads in
// order.
template <class T, math::PointwiseLoss K>
__global__ void __launch_bounds__(kReduceThreads)
    pointwise_loss_reduce_kernel(const T* __restrict__ x, const float* __restrict__ t,
                                             float* __restrict__ loss, int64_t n, float beta, float out_scale) {
  float mine = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mine += math::pointwise_loss(K, float(to_acc(x[i])), t[i], beta);
  const float total = block_sum(mine);
  if (threadIdx.x == 0) loss[0] = total * out_scale;
}

template <class T, math::PointwiseLoss K>
__global__ void pointwise_loss_backward_kernel(const T* __restrict__ x, const float* __restrict__ t,
                                               T* __restrict__ dx, int64_t n, float beta, float scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = from_acc<T>(scale * math::pointwise_loss_grad(K, float(to_acc(x[i])), t[i], beta));
}

}  // namespace

void cross_entropy_forward(DType dtype, const void* logits, const int32_t* targets, float* loss, int64_t N, int64_t C,
                           math::Reduction reduction, float label_smoothing, StreamHandle stream) {
  const bool reduce = reduction != math::Reduction::none;
  const float out_scale = reduction == math::Reduction::mean ? 1.0f / float(N) : 1.0f;
  dispatch_floating(dtype, "cross_entropy_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned blocks = reduce ? 1u : grid_for(N * 32, kThreads);
    cross_entropy_forward_kernel<T><<<blocks, reduce ? kReduceThreads : kThreads, 0, stream>>>(
        static_cast<const T*>(logits), targets, loss, N, C, label_smoothing, reduce, out_scale);
  });
  SG_CUDA_CHECK_LAUNCH("cross_entropy_forward");
}

void cross_entropy_backward(DType dtype, const void* logits, const int32_t* targets, void* dlogits, int64_t N,
                            int64_t C, math::Reduction reduction, float label_smoothing, float grad_scale,
                            StreamHandle stream) {
  const float scale = reduction == math::Reduction::mean ? grad_scale / float(N) : grad_scale;
  dispatch_floating(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cross_entropy_backward_kernel<T><<<grid_for(N * 32, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(logits), targets, static_cast<T*>(dlogits), N, C, label_smoothing, scale);
  });
  SG_CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

void pointwise_loss_forward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, float* loss,
                            int64_t n, math::Reduction reduction, float beta, StreamHandle stream) {
  dispatch_floating(dtype, "loss_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_pointwise_loss(kind, [&](auto k) {
      constexpr math::PointwiseLoss K = decltype(k)::value;
      if (reduction == math::Reduction::none) {
        pointwise_loss_each_kernel<T, K><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const T*>(x), t,
                                                                                         loss, n, beta);
      } else {
        const float out_scale = reduction == math::Reduction::mean ? float(1.0 / double(n)) : 1.0f;
        pointwise_loss_reduce_kernel<T, K><<<1, kReduceThreads, 0, stream>>>(static_cast<const T*>(x), t, loss, n,
                                                                             beta, out_scale);
      }
    });
  });
  SG_CUDA_CHECK_LAUNCH("loss_forward");
}

void pointwise_loss_backward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, void* dx, int64_t n,
                             math::Reduction reduction, float beta, float grad_scale, StreamHandle stream) {
  const float scale = reduction == math::Reduction::mean ? grad_scale / float(n) : grad_scale;
  dispatch_floating(dtype, "loss_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_pointwise_loss(kind, [&](auto k) {
      pointwise_loss_backward_kernel<T, decltype(k)::value><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), t, static_cast<T*>(dx), n, beta, scale);
    });
  });
  SG_CUDA_CHECK_LAUNCH("loss_backward");
}

}  // namespace sg::cuda
