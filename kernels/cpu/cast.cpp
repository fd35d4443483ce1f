#include "kernels/cpu/cast.h"

#include <type_traits>

#include "core/half.h"

namespace sg::cpu {
namespace {

template <class S, class D>
void cast_loop(const S* src, D* dst, int64_t n, float scale) {
  if constexpr (std::is_same_v<S, uint8_t>) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = from_acc<D>(float(src[i]) * scale);
  } else {
    (void)scale;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = from_acc<D>(to_acc(src[i]));
  }
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
