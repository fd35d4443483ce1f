#pragma once
// Reference tensor ops: one obvious loop each, templated on the storage type so the tests can
// run them in double for finite differences.
#include <cstdint>

#include "core/half.h"

namespace sg::cpu::ref {

// x [N, HW, C], s [N, C] -> y [N, HW, C]
template <class T>
void channel_scale_forward(const T* x, const T* s, T* y, int64_t n_batch, int64_t hw, int64_t c) {
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t k = 0; k < c; ++k)
        y[(n * hw + i) * c + k] = from_acc<T>(to_acc(x[(n * hw + i) * c + k]) * to_acc(s[n * c + k]));
}

template <class T>
void channel_scale_backward(const T* x, const T* s, const T* dy, T* dx, T* ds, int64_t n_batch, int64_t hw,
                            int64_t c) {
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t k = 0; k < c; ++k) {
      acc_t<T> sum = 0;
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t j = (n * hw + i) * c + k;
        sum += to_acc(dy[j]) * to_acc(x[j]);
        dx[j] = from_acc<T>(to_acc(dy[j]) * to_acc(s[n * c + k]));
      }
      ds[n * c + k] = from_acc<T>(sum);
    }
}

template <class T>
void add(const T* a, const T* b, T* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = from_acc<T>(to_acc(a[i]) + to_acc(b[i]));
}

template <class T>
void axpy(acc_t<T> alpha, const T* x, T* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = from_acc<T>(alpha * to_acc(x[i]) + to_acc(y[i]));
}

template <class T>
void mul(const T* a, const T* b, T* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = from_acc<T>(to_acc(a[i]) * to_acc(b[i]));
}

template <class T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    da[i] = from_acc<T>(to_acc(dy[i]) * to_acc(b[i]));
    db[i] = from_acc<T>(to_acc(dy[i]) * to_acc(a[i]));
  }
}

template <class T>
void fill(T* y, acc_t<T> value, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = from_acc<T>(value);
}

template <class T>
void scale(const T* x, acc_t<T> alpha, T* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] = from_acc<T>(alpha * to_acc(x[i]));
}

// inputs[i] [rows, widths[i]] -> y [rows, sum widths]
template <class T>
void concat_channels_forward(const T* const* inputs, const int64_t* widths, int count, T* y, int64_t rows) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total += widths[i];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0;
    for (int i = 0; i < count; ++i) {
      for (int64_t k = 0; k < widths[i]; ++k) y[r * total + offset + k] = inputs[i][r * widths[i] + k];
      offset += widths[i];
    }
  }
}

template <class T>
void concat_channels_backward(const T* dy, T* const* dinputs, const int64_t* widths, int count, int64_t rows) {
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total += widths[i];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0;
    for (int i = 0; i < count; ++i) {
      for (int64_t k = 0; k < widths[i]; ++k) dinputs[i][r * widths[i] + k] = dy[r * total + offset + k];
      offset += widths[i];
    }
  }
}

}  // namespace sg::cpu::ref
