#pragma once
// Reference input normalisation (kernels/normalize_input.h): one element at a time, the product
// and the sum rounded to float separately, then the one rounding to the destination type.
#include <cstdint>

#include "core/half.h"

namespace sg::cpu::ref {

template <class D>
void normalize_input(const uint8_t* x, int64_t pixels, int channels, const float* scale, const float* shift, D* y) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int c = 0; c < channels; ++c) {
      const int64_t i = p * channels + c;
      const float product = scale[c] * float(x[i]);
      y[i] = from_acc<D>(product + shift[c]);
    }
}

}  // namespace sg::cpu::ref
