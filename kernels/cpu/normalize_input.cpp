#include "kernels/cpu/normalize_input.h"

#include <type_traits>

#include "kernels/cpu/float_convert.h"

namespace sg::cpu {
namespace {

// Fixed blocks of kConvertBlock values (the results never depend on the threads); a block's
// floats are computed in place for f32, else in a stack buffer rounded once by from_f32.
// The kernels build for x86-64-v2, which has no FMA: the product and the sum are rounded
// separately, exactly as grading/model_input.cpp does on the host and the CUDA kernel does with
// __fmul_rn / __fadd_rn.
template <class D>
void normalize_loop(const uint8_t* x, int64_t n, int channels, const float* scale, const float* shift, D* y) {
  for_convert_blocks(n, [&](int64_t first, int64_t count) {
    const auto compute = [&](float* values) {
      int c = int(first % channels);
      for (int64_t i = 0; i < count; ++i) {
        values[i] = scale[c] * float(x[first + i]) + shift[c];
        if (++c == channels) c = 0;
      }
    };
    if constexpr (std::is_same_v<D, float>) {
      compute(y + first);
    } else {
      float values[kConvertBlock];
      compute(values);
      from_f32(values, y + first, count);
    }
  });
}

}  // namespace

void normalize_input(DType dst_dtype, const uint8_t* x, int64_t pixels, int channels, const float* scale,
                     const float* shift, void* y) {
  dispatch_floating(dst_dtype, "normalize_input", [&](auto tag) {
    using D = typename decltype(tag)::type;
    normalize_loop(x, pixels * channels, channels, scale, shift, static_cast<D*>(y));
  });
}

}  // namespace sg::cpu
