#pragma once
// The conv2d case of the op harness (tests/support/op_harness.h), shared by test_conv2d.cpp and
// test_conv2d_cuda.cpp: forward, backward input and backward weight (and bias) of one geometry,
// against kernels/cpu/conv2d_ref.h in the storage type.
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/cuda/runtime.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_params.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv2d_ref.h"
#include "tests/support/op_harness.h"
#if SLIDEGRADE_WITH_CUDA
#include "kernels/cuda/conv2d.h"
#endif

namespace sg::testing {

// One convolution: x [N, H, W, Cin], w [Cout, kh, kw, Cin/groups], y [N, Ho, Wo, Cout].
struct Conv2dGeometry {
  Conv2dParams p;
  Conv2dShape s;
  int64_t cg() const { return s.c_in / p.groups; }
  int64_t cog() const { return s.c_out / p.groups; }
  Shape x_shape() const { return {s.n, s.h, s.w, s.c_in}; }
  Shape w_shape() const { return {s.c_out, p.kernel_h, p.kernel_w, cg()}; }
  Shape y_shape() const { return {s.n, s.out_h, s.out_w, s.c_out}; }
  std::string str() const {
    return ::testing::PrintToString(x_shape()) + " -> " + std::to_string(s.c_out) + " " + to_string(p);
  }
};

inline Conv2dGeometry conv2d_geometry(const Conv2dParams& p, int64_t n, int64_t h, int64_t w, int64_t c_in,
                                      int64_t c_out) {
  Conv2dGeometry g;
  g.p = p;
  g.s.n = n, g.s.h = h, g.s.w = w, g.s.c_in = c_in, g.s.c_out = c_out;
  g.s.out_h = conv2d_output_extent(h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom);
  g.s.out_w = conv2d_output_extent(w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right);
  return g;
}

// A square kernel with one stride and a padding rule.
inline Conv2dGeometry conv2d_geometry(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t k,
                                      int64_t stride, Padding padding, int64_t groups) {
  return conv2d_geometry(make_conv2d_params(k, k, stride, padding, h, w, groups), n, h, w, c_in, c_out);
}

// How a case calls the op:
//  - api: the public dispatching API (kernels/conv2d.h), on the CPU fast path or CUDA;
//  - small_chunks: the CPU launchers (kernels/cpu/conv2d.h) directly with a scratch bound of one
//    byte (one output row per im2col chunk, one image per f32 block): the chunking on small shapes;
//  - misaligned: the CUDA launchers (kernels/cuda/conv2d.h) with every pointer one element into
//    its allocation, so not 16-byte aligned: the launchers must take their element-wise paths.
enum class Conv2dRun { api, small_chunks, misaligned };

namespace conv2d_detail {

#if SLIDEGRADE_WITH_CUDA
// A device buffer whose data start one element into its allocation (poisoned); copies a tensor of
// the same device in and out.
struct OffsetBuffer {
  Tensor storage;
  void* ptr = nullptr;
  OffsetBuffer(const Tensor& like, Device device) {
    storage = Tensor::empty({like.numel() + 1}, like.dtype(), device);
    poison(storage);
    ptr = static_cast<char*>(storage.data()) + dtype_size(like.dtype());
  }
  void upload(const Tensor& t) const { cuda::memcpy_async(ptr, t.data(), t.nbytes(), nullptr); }
  void download(Tensor& t) const { cuda::memcpy_async(t.data(), ptr, t.nbytes(), nullptr); }
};
#endif

}  // namespace conv2d_detail

// Outputs y, dx, dw, and dbias when `dbias` (a null dbias skips the bias gradient). `with_bias`
// adds a bias in the forward. Each output sums, per element: y kh*kw*Cin/groups products (and the
// bias); dx the windows that overlap one input pixel (ceil(kh/sh) * ceil(kw/sw)) times Cout/groups;
// dw and dbias N*Ho*Wo.
inline OpCase conv2d_op_case(const std::string& op, DType dtype, const Conv2dGeometry& g, bool with_bias, bool dbias,
                             Conv2dRun how = Conv2dRun::api) {
  const Conv2dParams p = g.p;
  const Conv2dShape s = g.s;
  const Shape xs = g.x_shape(), ws = g.w_shape(), ys = g.y_shape(), bs{s.c_out};
  const double pixels = double(s.n * s.out_h * s.out_w);
  const double windows = double(((p.kernel_h + p.stride_h - 1) / p.stride_h) * ((p.kernel_w + p.stride_w - 1) / p.stride_w));
  OpCase k;
  k.op = op;
  k.description = describe(dtype, xs) + " -> " + std::to_string(s.c_out) + " " + to_string(p) +
                  (with_bias ? " bias" : "") + (how == Conv2dRun::small_chunks ? " small chunks"
                                                : how == Conv2dRun::misaligned ? " misaligned" : "");
  k.outputs = {{.name = "y", .summed_terms = double(p.kernel_h * p.kernel_w * g.cg()) + (with_bias ? 1 : 0)},
               {.name = "dx", .summed_terms = windows * double(g.cog())},
               {.name = "dw", .summed_terms = pixels}};
  if (dbias) k.outputs.push_back({.name = "dbias", .summed_terms = pixels});
  // x, w, bias, dy
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({random_tensor(rng, xs, dtype), random_tensor(rng, ws, dtype), random_tensor(rng, bs, dtype),
                     random_tensor(rng, ys, dtype)});
  };
  k.reference = [=](const OpInputs& in) {
    const Tensor &x = in.tensors[0], &w = in.tensors[1], &b = in.tensors[2], &dy = in.tensors[3];
    OpOutputs o{Tensor::empty(ys, dtype), Tensor::empty(xs, dtype), Tensor::empty(ws, dtype)};
    Tensor db = Tensor::empty(bs, dtype);
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::conv2d_forward(p, s, x.data_as<T>(), w.data_as<T>(), with_bias ? b.data_as<T>() : nullptr,
                               o[0].data_as<T>());
      cpu::ref::conv2d_backward_input(p, s, dy.data_as<T>(), w.data_as<T>(), o[1].data_as<T>());
      cpu::ref::conv2d_backward_weight(p, s, x.data_as<T>(), dy.data_as<T>(), o[2].data_as<T>(),
                                       dbias ? db.data_as<T>() : nullptr);
    });
    if (dbias) o.push_back(db);
    return o;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    const Tensor &x = in.tensors[0], &w = in.tensors[1], &b = in.tensors[2], &dy = in.tensors[3];
    Tensor* db = dbias ? &o[3] : nullptr;
    switch (how) {
      case Conv2dRun::api:
        conv2d_forward(p, x, w, with_bias ? &b : nullptr, o[0]);
        conv2d_backward_input(p, dy, w, o[1]);
        conv2d_backward_weight(p, x, dy, o[2], db);
        return;
      case Conv2dRun::small_chunks:
        if (!x.device().is_cpu()) throw std::runtime_error("small_chunks runs the CPU launchers: a CPU-only case");
        cpu::conv2d_forward(p, s, dtype, x.data(), w.data(), with_bias ? b.data() : nullptr, o[0].data(), 1);
        cpu::conv2d_backward_input(p, s, dtype, dy.data(), w.data(), o[1].data(), 1);
        cpu::conv2d_backward_weight(p, s, dtype, x.data(), dy.data(), o[2].data(), db ? db->data() : nullptr, 1);
        return;
      case Conv2dRun::misaligned: {
#if SLIDEGRADE_WITH_CUDA
        if (!x.device().is_cuda()) throw std::runtime_error("misaligned runs the CUDA launchers: a CUDA-only case");
        using conv2d_detail::OffsetBuffer;
        const Device d = x.device();
        const OffsetBuffer xb(x, d), wb(w, d), bb(b, d), dyb(dy, d), yb(o[0], d), dxb(o[1], d), dwb(o[2], d),
            dbb(b, d);
        xb.upload(x);
        wb.upload(w);
        bb.upload(b);
        dyb.upload(dy);
        cuda::conv2d_forward(p, s, dtype, xb.ptr, wb.ptr, with_bias ? bb.ptr : nullptr, yb.ptr, nullptr);
        cuda::conv2d_backward_input(p, s, dtype, dyb.ptr, wb.ptr, dxb.ptr, nullptr);
        cuda::conv2d_backward_weight(p, s, dtype, xb.ptr, dyb.ptr, dwb.ptr, db ? dbb.ptr : nullptr, nullptr);
        yb.download(o[0]);
        dxb.download(o[1]);
        dwb.download(o[2]);
        if (db) dbb.download(*db);
        cuda::device_synchronize(d.index);
        return;
#else
        throw std::runtime_error("misaligned runs the CUDA launchers: the build has no CUDA");
#endif
      }
    }
  };
  const double macs = double(s.n * s.out_h * s.out_w * s.c_out) * double(p.kernel_h * p.kernel_w * g.cg());
  k.flops = 3 * 2 * macs;  // forward, backward input, backward weight
  k.bytes = double((3 * xs.numel() + 3 * ws.numel() + 4 * ys.numel() + 2 * s.c_out) * int64_t(dtype_size(dtype)));
  return k;
}

}  // namespace sg::testing
