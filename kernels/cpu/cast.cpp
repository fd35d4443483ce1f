#include "kernels/cpu/cast.h"

#include <type_traits>

#include "kernels/cpu/float_convert.h"

namespace sg::cpu {
namespace {

// Every cast goes through f32, exactly as from_acc<D>(to_acc(s)) (so 16-bit NaNs come back as
// core/half.h's quiet NaN even for a same-type cast): fixed blocks of kConvertBlock elements,
// parallel for large arrays, converted through a stack buffer when neither side is f32.
template <class S, class D>
void cast_loop(const S* src, D* dst, int64_t n, float scale) {
  for_convert_blocks(n, [&](int64_t i0, int64_t count) {
    if constexpr (std::is_same_v<S, uint8_t> && std::is_same_v<D, float>) {
#pragma omp simd
      for (int64_t i = i0; i < i0 + count; ++i) dst[i] = float(src[i]) * scale;
    } else if constexpr (std::is_same_v<S, uint8_t>) {
      float values[kConvertBlock];
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) values[i] = float(src[i0 + i]) * scale;
      from_f32(values, dst + i0, count);
    } else if constexpr (std::is_same_v<S, float>) {
      (void)scale;
      from_f32(src + i0, dst + i0, count);
    } else if constexpr (std::is_same_v<D, float>) {
      (void)scale;
      to_f32(src + i0, dst + i0, count);
    } else {
      (void)scale;
      float values[kConvertBlock];
      to_f32(src + i0, values, count);
      from_f32(values, dst + i0, count);
    }
  });
}

template <class S>
void cast_from(DType dst_dtype, const S* src, void* dst, int64_t n, float scale) {
  dispatch_floating(dst_dtype, "cast", [&](auto tag) {
    using D = typename decltype(tag)::type;
    cast_loop(src, static_cast<D*>(dst), n, scale);
  });
}

}  // namespace

void cast(DType src_dtype, DType dst_dtype, const void* src, void* dst, int64_t n, float scale) {
  if (src_dtype == DType::u8) return cast_from(dst_dtype, static_cast<const uint8_t*>(src), dst, n, scale);
  dispatch_floating(src_dtype, "cast", [&](auto tag) {
    using S = typename decltype(tag)::type;
    cast_from(dst_dtype, static_cast<const S*>(src), dst, n, scale);
  });
}

}  // namespace sg::cpu
