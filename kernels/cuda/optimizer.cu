#include "kernels/cuda/common.cuh"
#include "kernels/cuda/deterministic_reduce.cuh"
#include "kernels/cuda/optimizer.h"

namespace sg::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kFinishThreads = 1024;  // the one block of finish_grad_norm_kernel

// Four consecutive elements, loaded and stored as one instruction: 16 bytes of f32 state,
// 8 bytes of f16/bf16 gradient.
template <class T>
using Vec4 = Pack<T, 4>;

// The updates are bandwidth-bound: each thread moves whole Vec4s when every pointer is 16-byte
// aligned, then a scalar tail covers n % 4 (or everything, for unaligned pointers).
template <class G>
__global__ void sgd_kernel(float* __restrict__ param, const G* __restrict__ grad, float* __restrict__ buf, int64_t n,
                           float lr, float momentum, float dampening, float weight_decay, bool nesterov,
                           bool first_step, bool vectorised) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool use_buf = momentum != 0.0f;
  float unused = 0;
  int64_t done = 0;
  if (vectorised) {
    const int64_t vectors = n / 4;
    for (int64_t i = first; i < vectors; i += stride) {
      Vec4<float> p = reinterpret_cast<const Vec4<float>*>(param)[i], b{};
      const Vec4<G> g = reinterpret_cast<const Vec4<G>*>(grad)[i];
      if (use_buf && !first_step) b = reinterpret_cast<const Vec4<float>*>(buf)[i];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        math::sgd_update(p.v[j], float(to_acc(g.v[j])), b.v[j], lr, momentum, dampening, weight_decay, nesterov,
                         first_step);
      reinterpret_cast<Vec4<float>*>(param)[i] = p;
      if (use_buf) reinterpret_cast<Vec4<float>*>(buf)[i] = b;
    }
    done = vectors * 4;
  }
  for (int64_t i = done + first; i < n; i += stride) {
    float p = param[i];
    float& b = use_buf ? buf[i] : unused;
    math::sgd_update(p, float(to_acc(grad[i])), b, lr, momentum, dampening, weight_decay, nesterov, first_step);
    param[i] = p;
  }
}

struct AdamWKernelConstants {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
};

template <class G>
__global__ void adamw_kernel(float* __restrict__ param, const G* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, AdamWKernelConstants c, bool vectorised) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t vectors = n / 4;
    for (int64_t i = first; i < vectors; i += stride) {
      Vec4<float> p = reinterpret_cast<const Vec4<float>*>(param)[i];
      Vec4<float> mv = reinterpret_cast<const Vec4<float>*>(m)[i], vv = reinterpret_cast<const Vec4<float>*>(v)[i];
      const Vec4<G> g = reinterpret_cast<const Vec4<G>*>(grad)[i];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        math::adamw_update(p.v[j], float(to_acc(g.v[j])), mv.v[j], vv.v[j], c.decay, c.beta1, c.one_minus_beta1,
                           c.beta2, c.one_minus_beta2, c.step_size, c.bias_correction2_sqrt, c.eps);
      reinterpret_cast<Vec4<float>*>(param)[i] = p;
      reinterpret_cast<Vec4<float>*>(m)[i] = mv;
      reinterpret_cast<Vec4<float>*>(v)[i] = vv;
    }
    done = vectors * 4;
  }
  for (int64_t i = done + first; i < n; i += stride)
    math::adamw_update(param[i], float(to_acc(grad[i])), m[i], v[i], c.decay, c.beta1, c.one_minus_beta1, c.beta2,
                       c.one_minus_beta2, c.step_size, c.bias_correction2_sqrt, c.eps);
}

// Pass 1 of the norm: block b writes the sum of squares of its grid-stride share.
template <class G>
__global__ void sum_of_squares_kernel(const G* __restrict__ x, int64_t n, float* __restrict__ partials) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  float mine = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = to_acc(x[i]);
    mine += g * g;
  }
  const float total = block_sum(mine);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Pass 2, one block: every partial in a fixed order, in double. The launch bound keeps ptxas
// at <= 64 registers so that the 1024-thread launch fits an SM's register file on sm_75.
__global__ void __launch_bounds__(kFinishThreads)
    finish_grad_norm_kernel(const float* __restrict__ partials, int64_t count, float max_norm,
                                        float* __restrict__ norm_and_coef) {
  double mine = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) mine += double(partials[i]);
  const double total = block_sum(mine);
  if (threadIdx.x == 0) {
    const double norm = sqrt(total);
    norm_and_coef[0] = float(norm);
    norm_and_coef[1] = float(double(max_norm) / (norm + 1e-6));
  }
}

template <class G>
__global__ void scale_if_below_one_kernel(G* __restrict__ x, int64_t n, const float* __restrict__ coef_ptr) {
  const float coef = *coef_ptr;
  if (!(coef < 1.0f)) return;  // the whole grid takes the same branch
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    x[i] = from_acc<G>(float(to_acc(x[i])) * coef);
}

template <class G>
__global__ void non_finite_check_and_unscale_kernel(G* __restrict__ x, int64_t n, float inv_scale,
                                                    float* __restrict__ found_inf) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const bool store = inv_scale != 1.0f;  // a factor of 1 is a check only: no writes (uniform branch)
  int bad = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = to_acc(x[i]);
    bad |= math::is_finite(g) ? 0 : 1;
    if (store) x[i] = from_acc<G>(g * inv_scale);
  }
  // Every block that saw one stores the same 1.0f: the outcome cannot depend on the order.
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
}

constexpr int64_t kMaxNormBlocks = 1024;

}  // namespace

void sgd_step(const SgdParams& p, DType grad_dtype, float* param, const void* grad, float* momentum_buffer,
              bool first_step, int64_t n, StreamHandle stream) {
  if (n == 0) return;
  const bool vectorised = aligned16(param) && aligned16(grad) && (!momentum_buffer || aligned16(momentum_buffer));
  dispatch_floating(grad_dtype, "sgd_step", [&](auto tag) {
    using G = typename decltype(tag)::type;
    sgd_kernel<G><<<grid_for(n / 4 + 1, kThreads), kThreads, 0, stream>>>(
        param, static_cast<const G*>(grad), momentum_buffer, n, p.lr, momentum_buffer ? p.momentum : 0.0f,
        p.dampening, p.weight_decay, p.nesterov, first_step, vectorised);
  });
  SG_CUDA_CHECK_LAUNCH("sgd_step");
}

void adamw_step(const AdamWParams& p, int64_t step, DType grad_dtype, float* param, const void* grad, float* exp_avg,
                float* exp_avg_sq, int64_t n, StreamHandle stream) {
  if (n == 0) return;
  const AdamWStepConstants s = adamw_step_constants(p, step);
  const AdamWKernelConstants c{float(s.decay),     p.beta1,           float(s.one_minus_beta1),
                               p.beta2,            float(s.one_minus_beta2), float(s.step_size),
                               float(s.bias_correction2_sqrt), p.eps};
  const bool vectorised = aligned16(param) && aligned16(grad) && aligned16(exp_avg) && aligned16(exp_avg_sq);
  dispatch_floating(grad_dtype, "adamw_step", [&](auto tag) {
    using G = typename decltype(tag)::type;
    adamw_kernel<G><<<grid_for(n / 4 + 1, kThreads), kThreads, 0, stream>>>(param, static_cast<const G*>(grad), exp_avg,
                                                                           exp_avg_sq, n, c, vectorised);
  });
  SG_CUDA_CHECK_LAUNCH("adamw_step");
}

int64_t sum_of_squares_blocks(int64_t n) {
  const int64_t blocks = (n + kThreads * 8 - 1) / (kThreads * 8);  // about 8 elements per thread
  return blocks < 1 ? 1 : (blocks > kMaxNormBlocks ? kMaxNormBlocks : blocks);
}

void sum_of_squares_partials(DType dtype, const void* x, int64_t n, float* partials, StreamHandle stream) {
  dispatch_floating(dtype, "clip_grad_norm", [&](auto tag) {
    using G = typename decltype(tag)::type;
    sum_of_squares_kernel<G><<<unsigned(sum_of_squares_blocks(n)), kThreads, 0, stream>>>(static_cast<const G*>(x), n,
                                                                                         partials);
  });
  SG_CUDA_CHECK_LAUNCH("clip_grad_norm (sum of squares)");
}

void finish_grad_norm(const float* partials, int64_t count, float max_norm, float* norm_and_coef, StreamHandle stream) {
  finish_grad_norm_kernel<<<1, kFinishThreads, 0, stream>>>(partials, count, max_norm, norm_and_coef);
  SG_CUDA_CHECK_LAUNCH("clip_grad_norm (total)");
}

void scale_if_below_one(DType dtype, void* x, int64_t n, const float* coef, StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, "clip_grad_norm", [&](auto tag) {
    using G = typename decltype(tag)::type;
    scale_if_below_one_kernel<G><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<G*>(x), n, coef);
  });
  SG_CUDA_CHECK_LAUNCH("clip_grad_norm (scale)");
}

void non_finite_check_and_unscale(DType dtype, void* x, int64_t n, float inv_scale, float* found_inf,
                                  StreamHandle stream) {
  if (n == 0) return;
  dispatch_floating(dtype, "non_finite_check_and_unscale", [&](auto tag) {
    using G = typename decltype(tag)::type;
    non_finite_check_and_unscale_kernel<G><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<G*>(x), n,
                                                                                          inv_scale, found_inf);
  });
  SG_CUDA_CHECK_LAUNCH("non_finite_check_and_unscale");
}

}  // namespace sg::cuda
