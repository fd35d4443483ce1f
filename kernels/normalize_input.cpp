#include "kernels/normalize_input.h"

#include <cmath>

#include "kernels/check.h"
#include "kernels/cpu/normalize_input.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/normalize_input.h"
#endif

namespace sg {

void normalize_input(const Tensor& x, std::span<const float> scale, std::span<const float> shift, Tensor& y,
                     const Stream& stream) {
  constexpr const char* op = "normalize_input";
  check::dtype(op, "x", x, DType::u8);
  check::rank(op, "x", x, 4);
  check::floating(op, "y", y);
  check::shape(op, "y", y, x.shape());
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  const int64_t channels = x.dim(3);
  SG_CHECK(channels >= 1 && channels <= kNormalizeInputMaxChannels, op, ": x ", x.str(), " has ", channels,
           " channels, expected 1..", kNormalizeInputMaxChannels);
  SG_CHECK(int64_t(scale.size()) == channels && int64_t(shift.size()) == channels, op, ": ", scale.size(),
           " scales and ", shift.size(), " shifts for the ", channels, " channels of x ", x.str());
  for (int64_t c = 0; c < channels; ++c)
    SG_CHECK(std::isfinite(scale[size_t(c)]) && std::isfinite(shift[size_t(c)]), op, ": channel ", c, " has scale ",
             scale[size_t(c)], " and shift ", shift[size_t(c)], ", expected finite values");
  const int64_t pixels = x.numel() / channels;
  if (pixels == 0) return;
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::normalize_input(y.dtype(), x.data_as<uint8_t>(), pixels, int(channels), scale.data(), shift.data(),
                                y.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::normalize_input(y.dtype(), x.data_as<uint8_t>(), pixels, int(channels), scale.data(), shift.data(), y.data(),
                        stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
