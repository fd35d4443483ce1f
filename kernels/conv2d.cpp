#include "kernels/conv2d.h"

#include "core/meta_device.h"
#include "kernels/check.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "kernels/cpu/conv2d.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/conv2d.h"
#endif

namespace sg {

Conv2dShape conv2d_shape(const char* op, const Conv2dParams& p, const Shape& x, const Shape& w) {
  auto where = [&] { return detail::concat(" (x ", x.str(), ", w ", w.str(), ", ", to_string(p), ")"); };
  SG_CHECK(x.rank() == 4, op, ": x has shape ", x.str(), ", expected rank 4 [N, H, W, Cin]", where());
  SG_CHECK(w.rank() == 4, op, ": w has shape ", w.str(), ", expected rank 4 [Cout, kh, kw, Cin/groups]", where());
  SG_CHECK(p.kernel_h > 0 && p.kernel_w > 0 && p.stride_h > 0 && p.stride_w > 0 && p.groups > 0, op,
           ": kernel, stride and groups must be positive", where());
  SG_CHECK(p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0, op,
           ": padding must not be negative", where());
  Conv2dShape s;
  s.n = x[0];
  s.h = x[1];
  s.w = x[2];
  s.c_in = x[3];
  s.c_out = w[0];
  SG_CHECK(s.c_in % p.groups == 0, op, ": Cin ", s.c_in, " is not divisible by groups ", p.groups, where());
  SG_CHECK(s.c_out % p.groups == 0, op, ": Cout ", s.c_out, " is not divisible by groups ", p.groups, where());
  SG_CHECK(w[1] == p.kernel_h && w[2] == p.kernel_w, op, ": w has shape ", w.str(), ", expected kernel ",
           p.kernel_h, "x", p.kernel_w, where());
  SG_CHECK(w[3] == s.c_in / p.groups, op, ": w has shape ", w.str(), ", expected w[3] == Cin/groups = ",
           s.c_in / p.groups, where());
  SG_CHECK(s.c_out > 0 && s.c_in > 0, op, ": Cin and Cout must be positive", where());
  s.out_h = conv2d_output_extent(s.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
  s.out_w = conv2d_output_extent(s.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
  SG_CHECK(s.h + p.pad_top + p.pad_bottom >= p.kernel_h && s.w + p.pad_left + p.pad_right >= p.kernel_w &&
               s.out_h >= 1 && s.out_w >= 1,
           op, ": the padded input is smaller than the kernel: no output pixel", where());
  return s;
}

namespace {

Shape output_shape(const Conv2dShape& s) { return Shape{s.n, s.out_h, s.out_w, s.c_out}; }

// One pass on meta (core/meta_device.h): the target's scratch for it, and the forward's multiply-adds.
// The CPU kernels take their im2col / conversion buffers from the allocator (kernels/cpu/conv2d.h);
// on CUDA only the weight gradient takes scratch (kernels/cuda_conv2d_scratch.h).
void meta_conv2d(const char* op, cpu::Conv2dPass pass, const Conv2dParams& p, const Conv2dShape& s, DType dtype,
                 bool has_bias) {
  meta::Session& session = meta::Session::current(op);
  if (pass == cpu::Conv2dPass::forward)
    session.add_macs(s.n * s.out_h * s.out_w * s.c_out * p.kernel_h * p.kernel_w * (s.c_in / p.groups));
  std::vector<size_t> bytes;
  if (session.target().cuda) {
    if (pass == cpu::Conv2dPass::backward_weight)
      bytes = cuda_conv2d_backward_weight_scratch(p, s, dtype, session.target().cuda_arch, has_bias);
  } else {
    for (const int64_t floats : cpu::conv2d_cpu_workspace(pass, p, s, dtype).buffer_floats)
      bytes.push_back(cpu::conv2d_cpu_buffer_bytes(floats));
  }
  meta::kernel_scratch(bytes, "conv2d scratch");
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
                    const Stream& stream) {
  constexpr const char* op = "conv2d_forward";
  check::floating(op, "x", x);
  check::defined(op, "w", w);
  const Conv2dShape s = conv2d_shape(op, p, x.shape(), w.shape());
  if (bias) check::shape(op, "bias", *bias, Shape{s.c_out});
  check::shape(op, "y", y, output_shape(s));
  check::same_dtype(op, {&x, &w, bias, &y});
  const DeviceGuard on_device = check::same_device(op, {&x, &w, bias, &y});
  const void* bias_data = bias ? bias->data() : nullptr;
  if (x.device().is_meta()) return meta_conv2d(op, cpu::Conv2dPass::forward, p, s, x.dtype(), bias != nullptr);
  if (x.device().is_cpu()) return cpu::conv2d_forward(p, s, x.dtype(), x.data(), w.data(), bias_data, y.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::conv2d_forward(p, s, x.dtype(), x.data(), w.data(), bias_data, y.data(), stream.handle());
#else
  (void)stream;
#endif
}

void conv2d_backward_input(const Conv2dParams& p, const Tensor& dy, const Tensor& w, Tensor& dx,
                           const Stream& stream) {
  constexpr const char* op = "conv2d_backward_input";
  check::floating(op, "dy", dy);
  check::defined(op, "w", w);
  check::defined(op, "dx", dx);
  // dx has the shape of the forward input x.
  const Conv2dShape s = conv2d_shape(op, p, dx.shape(), w.shape());
  check::shape(op, "dy", dy, output_shape(s));
  check::same_dtype(op, {&dy, &w, &dx});
  const DeviceGuard on_device = check::same_device(op, {&dy, &w, &dx});
  if (dy.device().is_meta()) return meta_conv2d(op, cpu::Conv2dPass::backward_input, p, s, dy.dtype(), false);
  if (dy.device().is_cpu()) return cpu::conv2d_backward_input(p, s, dy.dtype(), dy.data(), w.data(), dx.data());
#if SLIDEGRADE_WITH_CUDA
  cuda::conv2d_backward_input(p, s, dy.dtype(), dy.data(), w.data(), dx.data(), stream.handle());
#else
  (void)stream;
#endif
}

void conv2d_backward_weight(const Conv2dParams& p, const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias,
                            const Stream& stream) {
  constexpr const char* op = "conv2d_backward_weight";
  check::floating(op, "x", x);
  check::defined(op, "dw", dw);
  const Conv2dShape s = conv2d_shape(op, p, x.shape(), dw.shape());
  check::shape(op, "dy", dy, output_shape(s));
  if (dbias) check::shape(op, "dbias", *dbias, Shape{s.c_out});
  check::same_dtype(op, {&x, &dy, &dw, dbias});
  const DeviceGuard on_device = check::same_device(op, {&x, &dy, &dw, dbias});
  void* dbias_data = dbias ? dbias->data() : nullptr;
  if (x.device().is_meta())
    return meta_conv2d(op, cpu::Conv2dPass::backward_weight, p, s, x.dtype(), dbias != nullptr);
  if (x.device().is_cpu())
    return cpu::conv2d_backward_weight(p, s, x.dtype(), x.data(), dy.data(), dw.data(), dbias_data);
#if SLIDEGRADE_WITH_CUDA
  cuda::conv2d_backward_weight(p, s, x.dtype(), x.data(), dy.data(), dw.data(), dbias_data, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace sg
