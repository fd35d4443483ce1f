#include "kernels/cpu/bias_activation.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/float_convert.h"
#include "kernels/cpu/rows.h"

namespace sg::cpu {
namespace {

template <class T, math::Activation K>
void forward_rows(const T* x, const float* bias, T* y, int64_t M, int64_t C) {
#pragma omp parallel
  {
    std::vector<float> in_scratch(static_cast<size_t>(C)), out_scratch(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      const float* row = f32_row(x + m * C, in_scratch.data(), C);
      float* o = f32_out_row(y + m * C, out_scratch.data());
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = math::activation(K, row[c] + bias[c]);
      store_f32_row(o, y + m * C, C);
    }
  }
}

// One pass: dx row by row, dbias partial sums per fixed chunk of rows (thread-count independent).
template <class T, math::Activation K>
void backward_rows(const T* x, const float* bias, const T* dy, T* dx, float* dbias, int64_t M, int64_t C) {
  const int64_t rows_per_chunk = rows::chunk_rows(M);
  const int64_t chunks = (M + rows_per_chunk - 1) / rows_per_chunk;
  std::vector<double> partial(size_t(chunks * C));
#pragma omp parallel
  {
    std::vector<float> xs(static_cast<size_t>(C)), gs(static_cast<size_t>(C)), os(static_cast<size_t>(C)),
        sum(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      const int64_t end = std::min(M, (chunk + 1) * rows_per_chunk);
      for (int64_t m = chunk * rows_per_chunk; m < end; ++m) {
        const float* xr = f32_row(x + m * C, xs.data(), C);
        const float* gr = f32_row(dy + m * C, gs.data(), C);
        float* o = f32_out_row(dx + m * C, os.data());
        float* __restrict s = sum.data();
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float dz = gr[c] * math::activation_derivative(K, xr[c] + bias[c]);
          o[c] = dz;
          s[c] += dz;
        }
        store_f32_row(o, dx + m * C, C);
      }
      for (int64_t c = 0; c < C; ++c) partial[size_t(chunk * C + c)] = sum[size_t(c)];
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double total = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[size_t(chunk * C + c)];
    dbias[c] = float(total);
  }
}

}  // namespace

void bias_activation_forward(math::Activation act, DType dtype, const void* x, const float* bias, void* y, int64_t M,
                             int64_t C) {
  dispatch_floating(dtype, "bias_activation_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(act, [&](auto k) {
      forward_rows<T, decltype(k)::value>(static_cast<const T*>(x), bias, static_cast<T*>(y), M, C);
    });
  });
}

void bias_activation_backward(math::Activation act, DType dtype, const void* x, const float* bias, const void* dy,
                              void* dx, float* dbias, int64_t M, int64_t C) {
  dispatch_floating(dtype, "bias_activation_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    math::with_activation(act, [&](auto k) {
      backward_rows<T, decltype(k)::value>(static_cast<const T*>(x), bias, static_cast<const T*>(dy),
                                           static_cast<T*>(dx), dbias, M, C);
    });
  });
}

}  // namespace sg::cpu
