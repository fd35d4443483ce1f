#include "kernels/tensor_ops.h"

#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/tensor_ops.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/tensor_ops.h"
#endif

namespace sg {
namespace {

// Two same-shape, same-dtype, same-device floating tensors.
void check_pair(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b) {
  check::floating(op, name_a, a);
  check::shape(op, name_b, b, a.shape());
  check::same_dtype(op, {&a, &b});
  (void)check::devices_match(op, {&a, &b});
}

// The leading extents of a tensor (all but the last): what concatenated tensors share.
Shape leading_shape(const Tensor& t) {
  std::vector<int64_t> dims = t.shape().dims();
  dims.pop_back();
  return Shape(std::move(dims));
}

}  // namespace

void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y, const Stream& stream) {
  constexpr const char* op = "channel_scale_forward";
  check::floating(op, "x", x);
  check::rank(op, "x", x, 4);
  check::shape(op, "s", s, Shape{x.dim(0), x.dim(3)});
  check::shape(op, "y", y, x.shape());
  check::same_dtype(op, {&x, &s, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &s, &y});
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::channel_scale_forward(x.dtype(), x.data(), s.data(), y.data(), n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::channel_scale_forward(x.dtype(), x.data(), s.data(), y.data(), n, hw, c, stream.handle());
#else
  (void)stream;
#endif
}

void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor& dx, Tensor& ds,
                            const Stream& stream) {
  constexpr const char* op = "channel_scale_backward";
  check::floating(op, "x", x);
  check::rank(op, "x", x, 4);
  const Shape scale_shape{x.dim(0), x.dim(3)};
  check::shape(op, "s", s, scale_shape);
  check::shape(op, "dy", dy, x.shape());
  check::shape(op, "dx", dx, x.shape());
  check::shape(op, "ds", ds, scale_shape);
  check::same_dtype(op, {&x, &s, &dy, &dx, &ds});
  const DeviceGuard on_device = check::same_device(op, {&x, &s, &dy, &dx, &ds});
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu())
    return cpu::channel_scale_backward(x.dtype(), x.data(), s.data(), dy.data(), dx.data(), ds.data(), n, hw, c);
#if SLIDEGRADE_WITH_CUDA
  cuda::channel_scale_backward(x.dtype(), x.data(), s.data(), dy.data(), dx.data(), ds.data(), n, hw, c,
                               stream.handle());
#else
  (void)stream;
#endif
}

void add(const Tensor& a, const Tensor& b, Tensor& y, const Stream& stream) {
  constexpr const char* op = "add";
  check_pair(op, "a", a, "b", b);
  check_pair(op, "a", a, "y", y);
  const DeviceGuard on_device = check::same_device(op, {&a, &b, &y});
  if (a.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (a.device().is_cpu()) return cpu::add(a.dtype(), a.data(), b.data(), y.data(), a.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::add(a.dtype(), a.data(), b.data(), y.data(), a.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void add_(Tensor& a, const Tensor& b, const Stream& stream) {
  constexpr const char* op = "add_";
  check_pair(op, "a", a, "b", b);
  const DeviceGuard on_device = check::same_device(op, {&a, &b});
  if (a.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (a.device().is_cpu()) return cpu::add(a.dtype(), a.data(), b.data(), a.data(), a.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::add(a.dtype(), a.data(), b.data(), a.data(), a.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void axpy(float alpha, const Tensor& x, Tensor& y, const Stream& stream) {
  constexpr const char* op = "axpy";
  check_pair(op, "x", x, "y", y);
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::axpy(x.dtype(), alpha, x.data(), y.data(), x.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::axpy(x.dtype(), alpha, x.data(), y.data(), x.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void mul(const Tensor& a, const Tensor& b, Tensor& y, const Stream& stream) {
  constexpr const char* op = "mul";
  check_pair(op, "a", a, "b", b);
  check_pair(op, "a", a, "y", y);
  const DeviceGuard on_device = check::same_device(op, {&a, &b, &y});
  if (a.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (a.device().is_cpu()) return cpu::mul(a.dtype(), a.data(), b.data(), y.data(), a.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::mul(a.dtype(), a.data(), b.data(), y.data(), a.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void mul_backward(const Tensor& a, const Tensor& b, const Tensor& dy, Tensor& da, Tensor& db, const Stream& stream) {
  constexpr const char* op = "mul_backward";
  check_pair(op, "a", a, "b", b);
  check_pair(op, "a", a, "dy", dy);
  check_pair(op, "a", a, "da", da);
  check_pair(op, "a", a, "db", db);
  const DeviceGuard on_device = check::same_device(op, {&a, &b, &dy, &da, &db});
  if (a.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (a.device().is_cpu())
    return cpu::mul_backward(a.dtype(), a.data(), b.data(), dy.data(), da.data(), db.data(), a.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::mul_backward(a.dtype(), a.data(), b.data(), dy.data(), da.data(), db.data(), a.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void fill_(Tensor& t, float value, const Stream& stream) {
  check::floating("fill_", "t", t);
  const DeviceGuard on_device = check::same_device("fill_", {&t});
  if (t.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (t.device().is_cpu()) return cpu::fill(t.dtype(), t.data(), value, t.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::fill(t.dtype(), t.data(), value, t.numel(), stream.handle());
#else
  (void)stream;
#endif
}

void scale(const Tensor& x, float alpha, Tensor& y, const Stream& stream) {
  constexpr const char* op = "scale";
  check_pair(op, "x", x, "y", y);
  const DeviceGuard on_device = check::same_device(op, {&x, &y});
  if (x.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  if (x.device().is_cpu()) return cpu::scale(x.dtype(), x.data(), alpha, y.data(), x.numel());
#if SLIDEGRADE_WITH_CUDA
  cuda::scale(x.dtype(), x.data(), alpha, y.data(), x.numel(), stream.handle());
#else
  (void)stream;
#endif
}

namespace {

// Checks the pieces against the whole and returns the whole's number of rows.
int64_t check_concat(const char* op, const char* piece_name, std::span<const Tensor> pieces, const char* whole_name,
                     const Tensor& whole) {
  SG_CHECK(!pieces.empty(), op, ": no ", piece_name, " tensors");
  check::floating(op, whole_name, whole);
  SG_CHECK(whole.rank() >= 1, op, ": ", whole_name, " has shape ", whole.shape().str(), ", expected rank >= 1");
  const Shape leading = leading_shape(whole);
  int64_t channels = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Tensor& t = pieces[i];
    const std::string name = detail::concat(piece_name, "[", i, "]");
    check::defined(op, name, t);
    SG_CHECK(t.rank() == whole.rank() && leading_shape(t) == leading, op, ": ", name, " has shape ", t.shape().str(),
             ", expected ", leading.str(), " + [channels] to match ", whole_name, " ", whole.shape().str());
    SG_CHECK(t.dtype() == whole.dtype(), op, ": ", name, " is ", dtype_name(t.dtype()), ", expected ",
             dtype_name(whole.dtype()), " like ", whole_name);
    SG_CHECK(t.device() == whole.device(), op, ": tensors on different devices (", name, " ", t.str(), " and ",
             whole_name, " ", whole.str(), ")");
    channels += t.dim(-1);
  }
  SG_CHECK(channels == whole.dim(-1), op, ": ", whole_name, " has shape ", whole.shape().str(), ", expected ",
           channels, " channels (the sum over ", piece_name, ")");
  return leading.numel();
}

}  // namespace

void concat_channels_forward(std::span<const Tensor> inputs, Tensor& y, const Stream& stream) {
  constexpr const char* op = "concat_channels_forward";
  const int64_t rows = check_concat(op, "inputs", inputs, "y", y);
  if (y.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  const DeviceGuard on_device(y.device());  // check_concat checked that every input is on it
  const int64_t total = y.dim(-1);
  int64_t offset = 0;
  for (const Tensor& x : inputs) {
    const int64_t width = x.dim(-1);
    if (y.device().is_cpu()) {
      cpu::copy_columns(y.dtype(), x.data(), width, 0, y.data(), total, offset, rows, width);
    } else {
#if SLIDEGRADE_WITH_CUDA
      cuda::copy_columns(y.dtype(), x.data(), width, 0, y.data(), total, offset, rows, width, stream.handle());
#endif
    }
    offset += width;
  }
  (void)stream;
}

void concat_channels_backward(const Tensor& dy, std::span<Tensor> dinputs, const Stream& stream) {
  constexpr const char* op = "concat_channels_backward";
  const int64_t rows = check_concat(op, "dinputs", std::span<const Tensor>(dinputs.data(), dinputs.size()), "dy", dy);
  if (dy.device().is_meta()) return;  // no values, no scratch (core/meta_device.h)
  const DeviceGuard on_device(dy.device());  // check_concat checked that every dinput is on it
  const int64_t total = dy.dim(-1);
  int64_t offset = 0;
  for (Tensor& dx : dinputs) {
    const int64_t width = dx.dim(-1);
    if (dy.device().is_cpu()) {
      cpu::copy_columns(dy.dtype(), dy.data(), total, offset, dx.data(), width, 0, rows, width);
    } else {
#if SLIDEGRADE_WITH_CUDA
      cuda::copy_columns(dy.dtype(), dy.data(), total, offset, dx.data(), width, 0, rows, width, stream.handle());
#endif
    }
    offset += width;
  }
  (void)stream;
}

}  // namespace sg
