#pragma once
// Reference losses: one obvious loop per formula, accumulating in acc_t<T> (double for the
// finite-difference tests). Loss values are acc_t<T>: f32 for f32/f16/bf16 logits.
#include <cstdint>

#include "core/half.h"
#include "kernels/loss_math.h"

namespace sg::cpu::ref {

// logits [N, C], targets [N] in [0, C); loss [N] for none, [1] otherwise (mean over N).
template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, acc_t<T>* loss, int64_t N, int64_t C,
                           math::Reduction reduction, acc_t<T> label_smoothing) {
  using A = acc_t<T>;
  A total = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T* z = logits + i * C;
    A z_max = to_acc(z[0]);
    for (int64_t c = 1; c < C; ++c) z_max = math::max_(z_max, A(to_acc(z[c])));
    A sum_exp = 0, sum_z = 0;
    for (int64_t c = 0; c < C; ++c) {
      sum_exp += math::exp_(A(to_acc(z[c])) - z_max);
      sum_z += to_acc(z[c]);
    }
    const A lse = z_max + math::log_(sum_exp);
    const A l = math::cross_entropy_row(lse, A(to_acc(z[targets[i]])), sum_z / A(C), label_smoothing);
    if (reduction == math::Reduction::none) loss[i] = l;
    total += l;
  }
  if (reduction == math::Reduction::mean) loss[0] = total / A(N);
  if (reduction == math::Reduction::sum) loss[0] = total;
}

// dlogits [N, C] = grad_scale * d loss / d logits (for none: of the sum of the per-sample losses).
template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, T* dlogits, int64_t N, int64_t C,
                            math::Reduction reduction, acc_t<T> label_smoothing, acc_t<T> grad_scale) {
  using A = acc_t<T>;
  const A scale = reduction == math::Reduction::mean ? grad_scale / A(N) : grad_scale;
  for (int64_t i = 0; i < N; ++i) {
    const T* z = logits + i * C;
    A z_max = to_acc(z[0]);
    for (int64_t c = 1; c < C; ++c) z_max = math::max_(z_max, A(to_acc(z[c])));
    A sum_exp = 0;
    for (int64_t c = 0; c < C; ++c) sum_exp += math::exp_(A(to_acc(z[c])) - z_max);
    for (int64_t c = 0; c < C; ++c) {
      const A p = math::exp_(A(to_acc(z[c])) - z_max) / sum_exp;
      dlogits[i * C + c] = from_acc<T>(scale * math::cross_entropy_grad(p, c == targets[i], label_smoothing, A(C)));
    }
  }
}

// x and t [n] (any shape, flattened); loss [n] for none, [1] otherwise (mean over all n).
template <class T, class TT>
void pointwise_loss_forward(math::PointwiseLoss kind, const T* x, const TT* t, acc_t<T>* loss, int64_t n,
                            math::Reduction reduction, acc_t<T> beta) {
  using A = acc_t<T>;
  A total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const A l = math::pointwise_loss(kind, A(to_acc(x[i])), A(to_acc(t[i])), beta);
    if (reduction == math::Reduction::none) loss[i] = l;
    total += l;
  }
  if (reduction == math::Reduction::mean) loss[0] = total / A(n);
  if (reduction == math::Reduction::sum) loss[0] = total;
}

template <class T, class TT>
void pointwise_loss_backward(math::PointwiseLoss kind, const T* x, const TT* t, T* dx, int64_t n,
                             math::Reduction reduction, acc_t<T> beta, acc_t<T> grad_scale) {
  using A = acc_t<T>;
  const A scale = reduction == math::Reduction::mean ? grad_scale / A(n) : grad_scale;
  for (int64_t i = 0; i < n; ++i)
    dx[i] = from_acc<T>(scale * math::pointwise_loss_grad(kind, A(to_acc(x[i])), A(to_acc(t[i])), beta));
}

}  // namespace sg::cpu::ref
