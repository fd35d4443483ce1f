#include "kernels/cpu/dropout.h"

#include <vector>

#include "core/half.h"
#include "kernels/dropout_math.h"

namespace sg::cpu {
namespace {

template <class T>
void dropout_loop(const T* x, T* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset) {
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const PhiloxOutput r = philox_block(seed, offset, uint64_t(b));
    const int64_t first = 4 * b;
    const int64_t count = n - first < 4 ? n - first : 4;
    for (int64_t j = 0; j < count; ++j) {
      const bool keep = math::dropout_keep(philox_bits_to_uniform(r.v[j]), p);
      y[first + j] = from_acc<T>(math::dropout_apply(to_acc(x[first + j]), keep, scale));
    }
  }
}

template <class T>
void drop_connect_loop(const T* x, T* y, int64_t N, int64_t per_sample, float p, float scale, uint64_t seed,
                       uint64_t offset) {
  std::vector<float> factor(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    factor[size_t(n)] = math::dropout_keep(philox_uniform(seed, offset, uint64_t(n)), p) ? scale : 0.0f;
  const int64_t total = N * per_sample;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < total; ++i) y[i] = from_acc<T>(to_acc(x[i]) * factor[size_t(i / per_sample)]);
}

}  // namespace

void dropout(DType dtype, const void* x, void* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset) {
  dispatch_floating(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dropout_loop(static_cast<const T*>(x), static_cast<T*>(y), n, p, scale, seed, offset);
  });
}

void drop_connect(DType dtype, const void* x, void* y, int64_t N, int64_t per_sample, float p, float scale,
                  uint64_t seed, uint64_t offset) {
  dispatch_floating(dtype, "drop_connect", [&](auto tag) {
    using T = typename decltype(tag)::type;
    drop_connect_loop(static_cast<const T*>(x), static_cast<T*>(y), N, per_sample, p, scale, seed, offset);
  });
}

}  // namespace sg::cpu
