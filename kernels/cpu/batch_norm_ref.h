#pragma once
// Reference batch norm (+ fused activation): one obvious loop nest per channel. x, y, dx, dy
// are [M, C] (NHWC flattened, M = N*H*W); per-channel vectors are acc_t<T> (float, or double
// when the tests run the whole thing in double for finite differences). Sums run in double
// so that the reference is the most accurate thing in the comparison.
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "kernels/scalar_math.h"

namespace sg::cpu::ref {

template <class T>
void batch_norm_forward_train(const T* x, const acc_t<T>* gamma, const acc_t<T>* beta, acc_t<T>* running_mean,
                              acc_t<T>* running_var, T* y, acc_t<T>* saved_mean, acc_t<T>* saved_invstd, int64_t M,
                              int64_t C, double eps, double momentum, math::Activation act) {
  using A = acc_t<T>;
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t m = 0; m < M; ++m) sum += double(to_acc(x[m * C + c]));
    const double mean = sum / double(M);
    double squares = 0;
    for (int64_t m = 0; m < M; ++m) {
      const double d = double(to_acc(x[m * C + c])) - mean;
      squares += d * d;
    }
    const double var = squares / double(M);  // biased: normalises the batch
    const A invstd = A(1.0 / std::sqrt(var + eps));
    saved_mean[c] = A(mean);
    saved_invstd[c] = invstd;
    running_mean[c] = A((1 - momentum) * double(running_mean[c]) + momentum * mean);
    running_var[c] = A((1 - momentum) * double(running_var[c]) + momentum * var * double(M) / double(M - 1));
    for (int64_t m = 0; m < M; ++m) {
      const A z = (to_acc(x[m * C + c]) - A(mean)) * invstd * gamma[c] + beta[c];
      y[m * C + c] = from_acc<T>(math::activation(act, z));
    }
  }
}

template <class T>
void batch_norm_forward_eval(const T* x, const acc_t<T>* gamma, const acc_t<T>* beta, const acc_t<T>* running_mean,
                             const acc_t<T>* running_var, T* y, int64_t M, int64_t C, double eps,
                             math::Activation act) {
  using A = acc_t<T>;
  for (int64_t c = 0; c < C; ++c) {
    const A invstd = A(1.0 / std::sqrt(double(running_var[c]) + eps));
    for (int64_t m = 0; m < M; ++m) {
      const A z = (to_acc(x[m * C + c]) - running_mean[c]) * invstd * gamma[c] + beta[c];
      y[m * C + c] = from_acc<T>(math::activation(act, z));
    }
  }
}

// training: mean/invstd are the saved batch statistics and dx flows through them.
// evaluation: mean is running_mean, invstd = 1 / sqrt(running_var + eps): dx = dz * gamma * invstd.
template <class T>
void batch_norm_backward(const T* x, const T* dy, const acc_t<T>* gamma, const acc_t<T>* beta, const acc_t<T>* mean,
                         const acc_t<T>* invstd, bool training, T* dx, acc_t<T>* dgamma, acc_t<T>* dbeta, int64_t M,
                         int64_t C, math::Activation act) {
  using A = acc_t<T>;
  for (int64_t c = 0; c < C; ++c) {
    double sum_dz = 0, sum_dz_xhat = 0;
    for (int64_t m = 0; m < M; ++m) {
      const A xhat = (to_acc(x[m * C + c]) - mean[c]) * invstd[c];
      const A dz = to_acc(dy[m * C + c]) * math::activation_derivative(act, xhat * gamma[c] + beta[c]);
      sum_dz += double(dz);
      sum_dz_xhat += double(dz) * double(xhat);
    }
    dgamma[c] = A(sum_dz_xhat);
    dbeta[c] = A(sum_dz);
    const A mean_dz = A(sum_dz / double(M)), mean_dz_xhat = A(sum_dz_xhat / double(M));
    for (int64_t m = 0; m < M; ++m) {
      const A xhat = (to_acc(x[m * C + c]) - mean[c]) * invstd[c];
      const A dz = to_acc(dy[m * C + c]) * math::activation_derivative(act, xhat * gamma[c] + beta[c]);
      const A g = training ? dz - mean_dz - xhat * mean_dz_xhat : dz;
      dx[m * C + c] = from_acc<T>(g * gamma[c] * invstd[c]);
    }
  }
}

}  // namespace sg::cpu::ref
