#include "kernels/cast.h"

#include "kernels/check.h"
#include "kernels/cpu/cast.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/cast.h"
#endif

namespace sg {
namespace {

void run_cast(const char* op, const Tensor& src, Tensor& dst, float scale, const Stream& stream) {
  check::defined(op, "src", src);
  check::floating(op, "dst", dst);
  check::shape(op, "dst", dst, src.shape());
  const DeviceGuard on_device = check::same_device(op, {&src, &dst});
  if (src.numel() == 0) return;
  if (src.dtype() == dst.dtype()) {  // same type: a copy
    dst.copy_from(src, stream);
    return;
  }
  if (src.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (src.device().is_cpu()) return cpu::cast(src.dtype(), dst.dtype(), src.data(), dst.data(), src.numel(), scale);
#if SLIDEGRADE_WITH_CUDA
  cuda::cast(src.dtype(), dst.dtype(), src.data(), dst.data(), src.numel(), scale, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace

void cast(const Tensor& src, Tensor& dst, const Stream& stream) {
  constexpr const char* op = "cast";
  check::defined(op, "src", src);
  SG_CHECK(is_floating(src.dtype()) || src.dtype() == DType::u8, op, ": src is ", dtype_name(src.dtype()),
           ", expected f32, f16, bf16 or u8");
  run_cast(op, src, dst, 1.0f, stream);
}

void cast_scaled(const Tensor& src, Tensor& dst, float scale, const Stream& stream) {
  constexpr const char* op = "cast_scaled";
  check::dtype(op, "src", src, DType::u8);
  run_cast(op, src, dst, scale, stream);
}

}  // namespace sg
