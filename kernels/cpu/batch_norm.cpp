#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "kernels/cpu/rows.h"

namespace sg::cpu {
namespace {

// Per-channel mean and biased variance of x [M, C]. One pass with shifted sums: shifting by
// the first row keeps sum d and sum d^2 well conditioned when |mean| >> std.
template <class T>
void channel_moments(const T* x, int64_t M, int64_t C, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t rows_per_chunk = rows::chunk_rows(M);
  const int64_t chunks = (M + rows_per_chunk - 1) / rows_per_chunk;
  std::vector<float> shift(size_t(C), 0.0f);
  for (int64_t c = 0; c < C; ++c) shift[size_t(c)] = to_acc(x[c]);
  std::vector<double> part_sum(size_t(chunks * C)), part_squares(size_t(chunks * C));
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(C)), s1(static_cast<size_t>(C)), s2(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      for (int64_t c = 0; c < C; ++c) s1[size_t(c)] = s2[size_t(c)] = 0.0f;
      const int64_t end = std::min(M, (chunk + 1) * rows_per_chunk);
      for (int64_t m = chunk * rows_per_chunk; m < end; ++m) {
        const float* row = f32_row(x + m * C, scratch.data(), C);
        float* __restrict a = s1.data();
        float* __restrict b = s2.data();
        const float* __restrict k = shift.data();
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float d = row[c] - k[c];
          a[c] += d;
          b[c] += d * d;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        part_sum[size_t(chunk * C + c)] = s1[size_t(c)];
        part_squares[size_t(chunk * C + c)] = s2[size_t(c)];
      }
    }
  }
  mean.assign(size_t(C), 0.0);
  var.assign(size_t(C), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < C; ++c) {
      mean[size_t(c)] += part_sum[size_t(chunk * C + c)];
      var[size_t(c)] += part_squares[size_t(chunk * C + c)];
    }
  for (int64_t c = 0; c < C; ++c) {
    const double shifted_mean = mean[size_t(c)] / double(M);
    var[size_t(c)] = std::max(0.0, var[size_t(c)] / double(M) - shifted_mean * shifted_mean);
    mean[size_t(c)] = double(shift[size_t(c)]) + shifted_mean;
  }
}

// y = act((x - mean) * invstd * gamma + beta), row by row.
template <class T, math::Activation K>
void apply(const T* x, T* y, const float* mean, const float* invstd, const float* gamma, const float* beta, int64_t M,
           int64_t C) {
#pragma omp parallel
  {
    std::vector<float> in_scratch(static_cast<size_t>(C)), out_scratch(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* row = f32_row(x + m * C, in_scratch.data(), C);
      float* o = f32_out_row(y + m * C, out_scratch.data());
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = math::activation(K, (row[c] - mean[c]) * invstd[c] * gamma[c] + beta[c]);
      store_f32_row(o, y + m * C, C);
    }
  }
}

template <class T>
void forward_train(const T* x, const float* gamma, const float* beta, float* running_mean, float* running_var, T* y,
                   float* saved_mean, float* saved_invstd, int64_t M, int64_t C, double eps, double momentum,
                   math::Activation act) {
  std::vector<double> mean, var;
  channel_moments(x, M, C, mean, var);
  for (int64_t c = 0; c < C; ++c) {
    const size_t i = size_t(c);
    saved_mean[c] = float(mean[i]);
    saved_invstd[c] = float(1.0 / std::sqrt(var[i] + eps));
    running_mean[c] = float((1 - momentum) * double(running_mean[c]) + momentum * mean[i]);
    running_var[c] = float((1 - momentum) * double(running_var[c]) + momentum * var[i] * double(M) / double(M - 1));
  }
  math::with_activation(act, [&](auto k) { apply<T, decltype(k)::value>(x, y, saved_mean, saved_invstd, gamma, beta, M, C); });
}

template <class T, math::Activation K>
void backward_impl(const T* x, const T* dy, const float* gamma, const float* beta, const float* mean,
                   const float* invstd, bool training, T* dx, float* dgamma, float* dbeta, int64_t M, int64_t C) {
  const int64_t rows_per_chunk = rows::chunk_rows(M);
  const int64_t chunks = (M + rows_per_chunk - 1) / rows_per_chunk;
  std::vector<double> part_dz(size_t(chunks * C)), part_dz_xhat(size_t(chunks * C));
  // Pass 1: sum dz and sum dz * xhat per channel.
#pragma omp parallel
  {
    std::vector<float> xs(static_cast<size_t>(C)), gs(static_cast<size_t>(C)), s1(static_cast<size_t>(C)), s2(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      for (int64_t c = 0; c < C; ++c) s1[size_t(c)] = s2[size_t(c)] = 0.0f;
      const int64_t end = std::min(M, (chunk + 1) * rows_per_chunk);
      for (int64_t m = chunk * rows_per_chunk; m < end; ++m) {
        const float* xr = f32_row(x + m * C, xs.data(), C);
        const float* gr = f32_row(dy + m * C, gs.data(), C);
        float* __restrict a = s1.data();
        float* __restrict b = s2.data();
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float xhat = (xr[c] - mean[c]) * invstd[c];
          const float dz = gr[c] * math::activation_derivative(K, xhat * gamma[c] + beta[c]);
          a[c] += dz;
          b[c] += dz * xhat;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        part_dz[size_t(chunk * C + c)] = s1[size_t(c)];
        part_dz_xhat[size_t(chunk * C + c)] = s2[size_t(c)];
      }
    }
  }
  std::vector<double> sum_dz(size_t(C), 0.0), sum_dz_xhat(size_t(C), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < C; ++c) {
      sum_dz[size_t(c)] += part_dz[size_t(chunk * C + c)];
      sum_dz_xhat[size_t(c)] += part_dz_xhat[size_t(chunk * C + c)];
    }
  std::vector<float> mean_dz(size_t(C), 0.0f), mean_dz_xhat(size_t(C), 0.0f), scale(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const size_t i = size_t(c);
    dgamma[c] = float(sum_dz_xhat[i]);
    dbeta[c] = float(sum_dz[i]);
    if (training) {
      mean_dz[i] = float(sum_dz[i] / double(M));
      mean_dz_xhat[i] = float(sum_dz_xhat[i] / double(M));
    }
    scale[i] = gamma[c] * invstd[c];
  }
  // Pass 2: dx (dz recomputed rather than stored).
  const float* md = mean_dz.data();
  const float* mdx = mean_dz_xhat.data();
  const float* sc = scale.data();
#pragma omp parallel
  {
    std::vector<float> xs(static_cast<size_t>(C)), gs(static_cast<size_t>(C)), os(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = f32_row(x + m * C, xs.data(), C);
      const float* gr = f32_row(dy + m * C, gs.data(), C);
      float* o = f32_out_row(dx + m * C, os.data());
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float xhat = (xr[c] - mean[c]) * invstd[c];
        const float dz = gr[c] * math::activation_derivative(K, xhat * gamma[c] + beta[c]);
        o[c] = (dz - md[c] - xhat * mdx[c]) * sc[c];
      }
      store_f32_row(o, dx + m * C, C);
    }
  }
}

}  // namespace

void batch_norm_forward_train(DType dtype, const void* x, const float* gamma, const float* beta, float* running_mean,
                              float* running_var, void* y, float* saved_mean, float* saved_invstd, int64_t M,
                              int64_t C, double eps, double momentum, math::Activation act) {
  dispatch_floating(dtype, "batch_norm_forward_train", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_train(static_cast<const T*>(x), gamma, beta, running_mean, running_var, static_cast<T*>(y), saved_mean,
                  saved_invstd, M, C, eps, momentum, act);
  });
}

void batch_norm_forward_eval(DType dtype, const void* x, const float* gamma, const float* beta,
                             const float* running_mean, const float* running_var, void* y, int64_t M, int64_t C,
                             double eps, math::Activation act) {
  std::vector<float> invstd(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) invstd[size_t(c)] = float(1.0 / std::sqrt(double(running_var[c]) + eps));
  dispatch_floating(dtype, "batch_norm_forward_eval", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(act, [&](auto k) {
      apply<T, decltype(k)::value>(static_cast<const T*>(x), static_cast<T*>(y), running_mean, invstd.data(), gamma,
                                   beta, M, C);
    });
  });
}

void batch_norm_backward(DType dtype, const void* x, const void* dy, const float* gamma, const float* beta,
                         const float* mean_or_running_mean, const float* invstd_or_running_var, bool training,
                         double eps, void* dx, float* dgamma, float* dbeta, int64_t M, int64_t C,
                         math::Activation act) {
  std::vector<float> eval_invstd;
  const float* invstd = invstd_or_running_var;
  if (!training) {
    eval_invstd.resize(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c)
      eval_invstd[size_t(c)] = float(1.0 / std::sqrt(double(invstd_or_running_var[c]) + eps));
    invstd = eval_invstd.data();
  }
  dispatch_floating(dtype, "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(act, [&](auto k) {
      backward_impl<T, decltype(k)::value>(static_cast<const T*>(x), static_cast<const T*>(dy), gamma, beta,
                                           mean_or_running_mean, invstd, training, static_cast<T*>(dx), dgamma, dbeta,
                                           M, C);
    });
  });
}

}  // namespace sg::cpu
