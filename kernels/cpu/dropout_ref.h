#pragma once
// Reference dropout and drop-connect: one philox_uniform per element (or per sample).
#include <cstdint>

#include "core/half.h"
#include "core/philox.h"
#include "kernels/dropout_math.h"

namespace sg::cpu::ref {

template <class T>
void dropout(const T* x, T* y, int64_t n, float p, float scale, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = math::dropout_keep(philox_uniform(seed, offset, uint64_t(i)), p);
    y[i] = from_acc<T>(math::dropout_apply(to_acc(x[i]), keep, scale));
  }
}

// x, y: [N, per_sample]
template <class T>
void drop_connect(const T* x, T* y, int64_t N, int64_t per_sample, float p, float scale, uint64_t seed,
                  uint64_t offset) {
  for (int64_t n = 0; n < N; ++n) {
    const bool keep = math::dropout_keep(philox_uniform(seed, offset, uint64_t(n)), p);
    for (int64_t j = 0; j < per_sample; ++j)
      y[n * per_sample + j] = from_acc<T>(math::dropout_apply(to_acc(x[n * per_sample + j]), keep, scale));
  }
}

}  // namespace sg::cpu::ref
