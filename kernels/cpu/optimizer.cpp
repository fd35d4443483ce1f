#include "kernels/cpu/optimizer.h"

#include "core/half.h"

namespace sg::cpu {
namespace {

// Below this many elements a loop runs on the calling thread: waking the OpenMP team costs
// more than the work (the heads' losses, B0's many small BN and bias tensors).
constexpr int64_t kParallelThreshold = 1 << 15;

template <class G>
void sgd_typed(const SgdParams& s, float* param, const G* grad, float* buf, bool first_step, int64_t n) {
  if (s.momentum == 0.0f) {
    float unused = 0;
#pragma omp parallel for simd schedule(static) firstprivate(unused) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i)
      math::sgd_update(param[i], to_acc(grad[i]), unused, s.lr, 0.0f, s.dampening, s.weight_decay, false, false);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i)
    math::sgd_update(param[i], to_acc(grad[i]), buf[i], s.lr, s.momentum, s.dampening, s.weight_decay, s.nesterov,
                     first_step);
}

template <class G>
void adamw_typed(const AdamWParams& a, int64_t step, float* param, const G* grad, float* m, float* v, int64_t n) {
  const AdamWStepConstants c = adamw_step_constants(a, step);
  const float decay = float(c.decay), omb1 = float(c.one_minus_beta1), omb2 = float(c.one_minus_beta2);
  const float step_size = float(c.step_size), bc2 = float(c.bias_correction2_sqrt);
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i)
    math::adamw_update(param[i], to_acc(grad[i]), m[i], v[i], decay, a.beta1, omb1, a.beta2, omb2, step_size, bc2,
                       a.eps);
}

}  // namespace

void sgd_step(const SgdParams& p, DType grad_dtype, float* param, const void* grad, float* momentum_buffer,
              bool first_step, int64_t n) {
  dispatch_floating(grad_dtype, "sgd_step", [&](auto tag) {
    using G = typename decltype(tag)::type;
    sgd_typed(p, param, static_cast<const G*>(grad), momentum_buffer, first_step, n);
  });
}

void adamw_step(const AdamWParams& p, int64_t step, DType grad_dtype, float* param, const void* grad, float* exp_avg,
                float* exp_avg_sq, int64_t n) {
  dispatch_floating(grad_dtype, "adamw_step", [&](auto tag) {
    using G = typename decltype(tag)::type;
    adamw_typed(p, step, param, static_cast<const G*>(grad), exp_avg, exp_avg_sq, n);
  });
}

double sum_of_squares(DType dtype, const void* x, int64_t n) {
  return dispatch_floating(dtype, "clip_grad_norm", [&](auto tag) {
    using G = typename decltype(tag)::type;
    const G* g = static_cast<const G*>(x);
    double sum = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const double v = to_acc(g[i]);
      sum += v * v;
    }
    return sum;
  });
}

void scale(DType dtype, void* x, int64_t n, float factor) {
  dispatch_floating(dtype, "clip_grad_norm", [&](auto tag) {
    using G = typename decltype(tag)::type;
    G* g = static_cast<G*>(x);
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) g[i] = from_acc<G>(to_acc(g[i]) * factor);
  });
}

bool non_finite_check_and_unscale(DType dtype, void* x, int64_t n, float inv_scale) {
  return dispatch_floating(dtype, "non_finite_check_and_unscale", [&](auto tag) {
    using G = typename decltype(tag)::type;
    G* g = static_cast<G*>(x);
    int found = 0;
    if (inv_scale == 1.0f) {  // a check only: nothing is written
#pragma omp parallel for simd schedule(static) reduction(| : found) if (n >= kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) found |= math::is_finite(to_acc(g[i])) ? 0 : 1;
      return found != 0;
    }
#pragma omp parallel for simd schedule(static) reduction(| : found) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float v = to_acc(g[i]);
      found |= math::is_finite(v) ? 0 : 1;
      g[i] = from_acc<G>(v * inv_scale);
    }
    return found != 0;
  });
}

}  // namespace sg::cpu
