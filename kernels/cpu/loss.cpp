#include "kernels/cpu/loss.h"

#include "core/half.h"

namespace sg::cpu {
namespace {

// Below this many elements a loop runs on the calling thread: waking the OpenMP team costs
// more than the work (the heads' losses, B0's many small BN and bias tensors).
constexpr int64_t kParallelThreshold = 1 << 15;

// One row's max, sum of exp(z - max) and sum of z, in f32.
struct RowStats {
  float z_max, sum_exp, sum_z;
};

template <class T>
RowStats row_stats(const T* z, int64_t C) {
  float z_max = to_acc(z[0]);
  for (int64_t c = 1; c < C; ++c) z_max = math::max_(z_max, to_acc(z[c]));
  float sum_exp = 0, sum_z = 0;
#pragma omp simd reduction(+ : sum_exp, sum_z)
  for (int64_t c = 0; c < C; ++c) {
    const float v = to_acc(z[c]);
    sum_exp += math::exp_(v - z_max);
    sum_z += v;
  }
  return {z_max, sum_exp, sum_z};
}

template <class T>
void ce_forward(const T* logits, const int32_t* targets, float* loss, int64_t N, int64_t C, math::Reduction reduction,
                float eps) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (N * C >= kParallelThreshold)
  for (int64_t i = 0; i < N; ++i) {
    const T* z = logits + i * C;
    const RowStats s = row_stats(z, C);
    const float l = math::cross_entropy_row(s.z_max + math::log_(s.sum_exp), to_acc(z[targets[i]]),
                                            s.sum_z / float(C), eps);
    if (reduction == math::Reduction::none) loss[i] = l;
    total += l;
  }
  if (reduction == math::Reduction::mean) loss[0] = float(total / double(N));
  if (reduction == math::Reduction::sum) loss[0] = float(total);
}

template <class T>
void ce_backward(const T* logits, const int32_t* targets, T* dlogits, int64_t N, int64_t C, math::Reduction reduction,
                 float eps, float grad_scale) {
  const float scale = reduction == math::Reduction::mean ? grad_scale / float(N) : grad_scale;
#pragma omp parallel for schedule(static) if (N * C >= kParallelThreshold)
  for (int64_t i = 0; i < N; ++i) {
    const T* z = logits + i * C;
    const RowStats s = row_stats(z, C);
    const float inv_sum = 1.0f / s.sum_exp;
    const int64_t target = targets[i];
    T* dz = dlogits + i * C;
    for (int64_t c = 0; c < C; ++c) {
      const float p = math::exp_(to_acc(z[c]) - s.z_max) * inv_sum;
      dz[c] = from_acc<T>(scale * math::cross_entropy_grad(p, c == target, eps, float(C)));
    }
  }
}

template <class T, math::PointwiseLoss K>
void pw_forward(const T* x, const float* t, float* loss, int64_t n, math::Reduction reduction, float beta) {
  if (reduction == math::Reduction::none) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) loss[i] = math::pointwise_loss(K, to_acc(x[i]), t[i], beta);
    return;
  }
  double total = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : total) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) total += math::pointwise_loss(K, to_acc(x[i]), t[i], beta);
  loss[0] = float(reduction == math::Reduction::mean ? total / double(n) : total);
}

template <class T, math::PointwiseLoss K>
void pw_backward(const T* x, const float* t, T* dx, int64_t n, math::Reduction reduction, float beta,
                 float grad_scale) {
  const float scale = reduction == math::Reduction::mean ? grad_scale / float(n) : grad_scale;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) dx[i] = from_acc<T>(scale * math::pointwise_loss_grad(K, to_acc(x[i]), t[i], beta));
}

}  // namespace

void cross_entropy_forward(DType dtype, const void* logits, const int32_t* targets, float* loss, int64_t N, int64_t C,
                           math::Reduction reduction, float label_smoothing) {
  dispatch_floating(dtype, "cross_entropy_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ce_forward(static_cast<const T*>(logits), targets, loss, N, C, reduction, label_smoothing);
  });
}

void cross_entropy_backward(DType dtype, const void* logits, const int32_t* targets, void* dlogits, int64_t N,
                            int64_t C, math::Reduction reduction, float label_smoothing, float grad_scale) {
  dispatch_floating(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ce_backward(static_cast<const T*>(logits), targets, static_cast<T*>(dlogits), N, C, reduction, label_smoothing,
                grad_scale);
  });
}

void pointwise_loss_forward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, float* loss,
                            int64_t n, math::Reduction reduction, float beta) {
  dispatch_floating(dtype, "loss_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_pointwise_loss(kind, [&](auto k) { pw_forward<T, decltype(k)::value>(static_cast<const T*>(x), t, loss, n, reduction, beta); });
  });
}

void pointwise_loss_backward(math::PointwiseLoss kind, DType dtype, const void* x, const float* t, void* dx, int64_t n,
                             math::Reduction reduction, float beta, float grad_scale) {
  dispatch_floating(dtype, "loss_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_pointwise_loss(kind, [&](auto k) {
      pw_backward<T, decltype(k)::value>(static_cast<const T*>(x), t, static_cast<T*>(dx), n, reduction, beta,
                                         grad_scale);
    });
  });
}

}  // namespace sg::cpu
