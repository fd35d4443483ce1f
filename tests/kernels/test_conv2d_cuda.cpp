// CUDA convolution kernels (kernels/cuda/conv2d*.cu) against the CPU reference
// (kernels/cpu/conv2d_ref.h) run in double, and against cuDNN where it is built in.
// The launchers are called directly through kernels/cuda/conv2d.h with device tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/conv2d_params.h"
#include "kernels/cpu/conv2d_ref.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/fast_divmod.h"
#include "tests/support/testing.h"

#if SLIDEGRADE_WITH_CUDA && SLIDEGRADE_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace sg {
namespace {

using testing::Rng;

// ---- Tests that run everywhere ------------------------------------------------------------------
TEST(Conv2dCuda, FastDivmodMatchesDivision) {
  Rng rng;
  SG_TRACE_SEED(rng);
  std::vector<int32_t> divisors;
  for (int32_t d = 1; d <= 300; ++d) divisors.push_back(d);
  for (int32_t d : {1023, 1024, 1025, 12544, 50176, 65535, 65536, 65537, 1 << 20, (1 << 30) + 7, 2147483647})
    divisors.push_back(d);
  for (int i = 0; i < 200; ++i) divisors.push_back(int32_t(rng.integer(1, 2147483647)));
  for (int32_t d : divisors) {
    const cuda::FastDivmod fd(d);
    auto check = [&](int32_t n) {
      int32_t q, r;
      fd.divmod(n, q, r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
    };
    for (int32_t n = 0; n < 2000; ++n) check(n);
    const int64_t dd = d;  // edges around multiples of d, kept inside [0, 2^31)
    for (int64_t n : {dd - 1, dd, dd + 1, 2 * dd - 1, 2 * dd, int64_t(2147483647), int64_t(2147483646),
                      2147483647 - dd, (2147483647 / dd) * dd, (2147483647 / dd) * dd - 1})
      if (n >= 0 && n <= 2147483647) check(int32_t(n));
    for (int i = 0; i < 200; ++i) check(int32_t(rng.integer(0, 2147483647)));
  }
}

#if SLIDEGRADE_WITH_CUDA
// ---- Cases: x [N,H,W,Cin], w [Cout,kh,kw,Cin/groups] ---------------------------------------
struct Case {
  Conv2dParams p;
  Conv2dShape s;
  std::string str() const {
    return detail::concat("N", s.n, " ", s.h, "x", s.w, " Cin ", s.c_in, " Cout ", s.c_out, " ", to_string(p));
  }
  int64_t cg() const { return s.c_in / p.groups; }
  int64_t cog() const { return s.c_out / p.groups; }
  Shape x_shape() const { return {s.n, s.h, s.w, s.c_in}; }
  Shape w_shape() const { return {s.c_out, p.kernel_h, p.kernel_w, cg()}; }
  Shape y_shape() const { return {s.n, s.out_h, s.out_w, s.c_out}; }
};

Case make_case(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t k, int64_t stride,
               Padding padding, int64_t groups) {
  Case c;
  c.p = make_conv2d_params(k, k, stride, padding, h, w, groups);
  c.s.n = n, c.s.h = h, c.s.w = w, c.s.c_in = c_in, c.s.c_out = c_out;
  c.s.out_h = conv2d_output_extent(h, k, stride, c.p.pad_top, c.p.pad_bottom);
  c.s.out_w = conv2d_output_extent(w, k, stride, c.p.pad_left, c.p.pad_right);
  return c;
}

// Rectangular kernels, different strides per axis and explicit (asymmetric) pads: catches any
// kh/kw, sh/sw or top/left mix-up that square cases hide.
Case make_rect_case(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kh, int64_t kw,
                    int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t groups) {
  Case c;
  c.p.kernel_h = kh, c.p.kernel_w = kw, c.p.stride_h = sh, c.p.stride_w = sw;
  c.p.pad_top = pt, c.p.pad_bottom = pb, c.p.pad_left = pl, c.p.pad_right = pr, c.p.groups = groups;
  c.s.n = n, c.s.h = h, c.s.w = w, c.s.c_in = c_in, c.s.c_out = c_out;
  c.s.out_h = conv2d_output_extent(h, kh, sh, pt, pb);
  c.s.out_w = conv2d_output_extent(w, kw, sw, pl, pr);
  return c;
}

// The CPU reference (kernels/cpu/conv2d_ref.h), run in double.
std::vector<double> reference_forward(const Case& c, const std::vector<double>& x, const std::vector<double>& w,
                                  const std::vector<double>* bias) {
  std::vector<double> y(size_t(c.y_shape().numel()), 0.0);
  cpu::ref::conv2d_forward(c.p, c.s, x.data(), w.data(), bias ? bias->data() : nullptr, y.data());
  return y;
}

std::vector<double> reference_backward_input(const Case& c, const std::vector<double>& dy, const std::vector<double>& w) {
  std::vector<double> dx(size_t(c.x_shape().numel()), 0.0);
  cpu::ref::conv2d_backward_input(c.p, c.s, dy.data(), w.data(), dx.data());
  return dx;
}

std::vector<double> reference_backward_weight(const Case& c, const std::vector<double>& x, const std::vector<double>& dy,
                                          std::vector<double>& dbias) {
  std::vector<double> dw(size_t(c.w_shape().numel()), 0.0);
  dbias.assign(size_t(c.s.c_out), 0.0);
  cpu::ref::conv2d_backward_weight(c.p, c.s, x.data(), dy.data(), dw.data(), dbias.data());
  return dw;
}

// Inputs are the same rounded values on both sides and both accumulate in at least f32, so
// the differences are the final rounding to the storage type plus f32 summation order over up
// to a few thousand terms (backward weight).
testing::Tolerance conv_tolerance(DType dtype) {
  switch (dtype) {
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1.6e-2, 1.6e-2};
    default: return {5e-4, 1e-4};
  }
}

// A device buffer holding a tensor `offset` elements into its allocation: offset 0 is 256-byte
// aligned, offset 1 breaks the 16-byte alignment the vector and tensor-core paths need, so the
// launchers must pick their element-wise paths.
struct DeviceBuffer {
  Tensor storage;  // flat, numel + offset elements, poisoned
  void* ptr = nullptr;
  Shape shape;
  DType dtype = DType::f32;

  DeviceBuffer(Shape shape_, DType dtype_, int64_t offset) : shape(shape_), dtype(dtype_) {
    storage = Tensor::empty({shape.numel() + offset}, dtype, Device::cuda(0));
    testing::poison(storage);
    ptr = static_cast<char*>(storage.data()) + size_t(offset) * dtype_size(dtype);
  }
  void upload(const Tensor& host) {
    cuda::memcpy_async(ptr, host.data(), host.nbytes(), nullptr);
    cuda::stream_synchronize(nullptr);
  }
  std::vector<double> download() const {
    Tensor host = Tensor::empty(shape, dtype);
    cuda::memcpy_async(host.data(), ptr, host.nbytes(), nullptr);
    cuda::stream_synchronize(nullptr);
    return testing::to_doubles(host);
  }
};

// Runs the three CUDA passes on one case and compares them with the reference; every device
// pointer starts `offset` elements into its allocation.
void check_case(Rng& rng, const Case& c, DType dtype, bool with_bias, int64_t offset = 0) {
  SCOPED_TRACE(::testing::Message() << c.str() << " " << dtype_name(dtype) << (with_bias ? " bias" : "")
                                    << (offset ? " misaligned" : ""));
  Tensor x = testing::random_tensor(rng, c.x_shape(), dtype);
  Tensor w = testing::random_tensor(rng, c.w_shape(), dtype);
  Tensor b = testing::random_tensor(rng, {c.s.c_out}, dtype);
  Tensor dy = testing::random_tensor(rng, c.y_shape(), dtype);
  const std::vector<double> xd = testing::to_doubles(x), wd = testing::to_doubles(w), bd = testing::to_doubles(b),
                            dyd = testing::to_doubles(dy);
  DeviceBuffer xg(c.x_shape(), dtype, offset), wg(c.w_shape(), dtype, offset), bg({c.s.c_out}, dtype, offset),
      dyg(c.y_shape(), dtype, offset);
  xg.upload(x);
  wg.upload(w);
  bg.upload(b);
  dyg.upload(dy);

  // Outputs are poisoned (NaN bit patterns) by DeviceBuffer.
  DeviceBuffer y(c.y_shape(), dtype, offset), dx(c.x_shape(), dtype, offset), dw(c.w_shape(), dtype, offset),
      db({c.s.c_out}, dtype, offset);

  cuda::conv2d_forward(c.p, c.s, dtype, xg.ptr, wg.ptr, with_bias ? bg.ptr : nullptr, y.ptr, nullptr);
  cuda::conv2d_backward_input(c.p, c.s, dtype, dyg.ptr, wg.ptr, dx.ptr, nullptr);
  cuda::conv2d_backward_weight(c.p, c.s, dtype, xg.ptr, dyg.ptr, dw.ptr, with_bias ? db.ptr : nullptr, nullptr);
  cuda::device_synchronize(0);

  const testing::Tolerance tol = conv_tolerance(dtype);
  EXPECT_TRUE(testing::all_close(y.download(), reference_forward(c, xd, wd, with_bias ? &bd : nullptr), tol))
      << "forward";
  EXPECT_TRUE(testing::all_close(dx.download(), reference_backward_input(c, dyd, wd), tol)) << "backward input";
  std::vector<double> dbias_expected;
  const std::vector<double> dw_expected = reference_backward_weight(c, xd, dyd, dbias_expected);
  EXPECT_TRUE(testing::all_close(dw.download(), dw_expected, tol)) << "backward weight";
  if (with_bias) {
    EXPECT_TRUE(testing::all_close(db.download(), dbias_expected, tol)) << "backward bias";
  }
}

enum class Kind { dense, pointwise, grouped, depthwise };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::dense: return "dense";
    case Kind::pointwise: return "pointwise";
    case Kind::grouped: return "grouped";
    case Kind::depthwise: return "depthwise";
  }
  return "?";
}

// A random case of one kind at one spatial size: channels either multiples of 8 (the vector
// and tensor-core paths) or not (the scalar paths), kernel 1/3/5, stride 1/2, both paddings.
Case random_case(Rng& rng, Kind kind, int64_t spatial) {
  const int64_t odd_channels[] = {1, 3, 5, 7, 13};
  const int64_t aligned_channels[] = {8, 16, 24, 32, 40};
  auto channels = [&](bool aligned) {
    return aligned ? aligned_channels[rng.integer(0, 4)] : odd_channels[rng.integer(0, 4)];
  };
  const bool aligned = rng.integer(0, 1) == 1;
  const int64_t n = rng.integer(0, 1) ? 3 : 1;
  const int64_t stride = rng.integer(1, 2);
  const Padding padding = rng.integer(0, 1) ? Padding::tf_same : Padding::symmetric;
  const int64_t k = kind == Kind::pointwise ? 1 : (rng.integer(0, 1) ? 3 : 5);
  // Rectangular inputs now and then, so H and W are never confused.
  const int64_t w = spatial > 1 && rng.integer(0, 2) == 0 ? spatial + 2 : spatial;
  switch (kind) {
    case Kind::dense:
    case Kind::pointwise: return make_case(n, spatial, w, channels(aligned), channels(aligned), k, stride, padding, 1);
    case Kind::grouped: {
      const int64_t cg = channels(aligned), cog = channels(aligned);
      return make_case(n, spatial, w, 2 * cg, 2 * cog, k, stride, padding, 2);
    }
    case Kind::depthwise: {
      const int64_t c = aligned ? 8 * rng.integer(1, 6) : channels(false) + 2;  // odd: 3..15
      return make_case(n, spatial, w, c, c, k, stride, padding, c);
    }
  }
  return {};
}

// ---- GPU tests ----------------------------------------------------------------------------------
TEST(Conv2dCuda, MatchesReferenceOnRandomShapes) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (Kind kind : {Kind::dense, Kind::pointwise, Kind::grouped, Kind::depthwise})
      for (int64_t spatial : {1, 3, 7, 17, 33})
        for (int repeat = 0; repeat < 2; ++repeat) {
          SCOPED_TRACE(kind_name(kind));
          check_case(rng, random_case(rng, kind, spatial), dtype, repeat == 0);
        }
}

// The shapes that pick each specialised kernel, fixed so that every run covers them: the
// depthwise 3x3/5x5 at stride 1/2 (vector path), the tensor-core GEMM with a K that is not a
// multiple of the 32-wide tile, M and N past one tile, and the scalar fallbacks.
TEST(Conv2dCuda, MatchesReferenceOnKernelSelectingShapes) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Case cases[] = {
      make_case(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32),  // depthwise 3x3 s1
      make_case(2, 18, 18, 48, 48, 3, 2, Padding::tf_same, 48),    // depthwise 3x3 s2, pads (0,1)
      make_case(1, 17, 19, 24, 24, 5, 1, Padding::tf_same, 24),    // depthwise 5x5 s1
      make_case(3, 16, 16, 40, 40, 5, 2, Padding::tf_same, 40),    // depthwise 5x5 s2, pads (1,2)
      make_case(1, 9, 9, 11, 11, 3, 2, Padding::symmetric, 11),    // depthwise scalar
      make_case(1, 9, 9, 264, 264, 3, 1, Padding::symmetric, 264),  // depthwise, two channel blocks
      make_case(3, 20, 20, 24, 144, 1, 1, Padding::symmetric, 1),  // pointwise expand, M > 128
      make_case(3, 20, 20, 144, 24, 1, 1, Padding::symmetric, 1),  // pointwise project
      make_case(1, 15, 15, 40, 72, 1, 1, Padding::symmetric, 1),   // K = 40: a partial k tile
      make_case(2, 33, 33, 3, 32, 3, 2, Padding::tf_same, 1),      // B0 stem: Cin 3, scalar
      make_case(1, 12, 12, 16, 136, 3, 2, Padding::tf_same, 1),    // dense 3x3 s2, N > 128
      make_case(1, 10, 10, 32, 48, 3, 1, Padding::symmetric, 2),   // grouped, aligned
      make_case(1, 6, 6, 200, 8, 1, 1, Padding::symmetric, 1),     // backward weight N = 200
      make_case(2, 13, 13, 16, 16, 7, 1, Padding::symmetric, 16),  // depthwise 7x7: generic vector kernel
      make_case(1, 11, 11, 16, 16, 3, 3, Padding::symmetric, 16),  // depthwise 3x3 s3: generic vector kernel
      make_case(3, 28, 28, 16, 24, 1, 1, Padding::symmetric, 1),   // 2352 pixels: two-pass dbias sum
      make_rect_case(2, 12, 15, 24, 24, 3, 5, 2, 1, 1, 0, 2, 1, 24),  // depthwise 3x5, strides 2/1
      make_rect_case(1, 9, 14, 16, 24, 1, 3, 1, 2, 0, 0, 1, 1, 1),    // dense 1x3, strides 1/2 (MMA)
      make_rect_case(2, 10, 11, 5, 7, 3, 2, 2, 3, 2, 1, 0, 1, 1),     // dense 3x2, strides 2/3 (scalar)
  };
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Case& c : cases) check_case(rng, c, dtype, true);
}

// Channels that allow the vector and tensor-core paths, but pointers that are not 16-byte
// aligned: the launchers must check the pointers and fall back to element-wise access.
TEST(Conv2dCuda, MisalignedPointersTakeElementwisePaths) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Case cases[] = {
      make_case(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32),  // depthwise 3x3 s1
      make_case(3, 20, 20, 24, 144, 1, 1, Padding::symmetric, 1),  // pointwise
      make_case(1, 12, 12, 16, 136, 3, 2, Padding::tf_same, 1),    // dense 3x3 s2
  };
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const Case& c : cases) check_case(rng, c, dtype, true, 1);
}

// Backward weight adds its partial sums in an order fixed by the shapes: two runs give the
// same bits.
TEST(Conv2dCuda, BackwardWeightIsDeterministic) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  for (const Case& c : {make_case(3, 33, 33, 32, 32, 3, 1, Padding::symmetric, 32),
                        make_case(3, 33, 33, 24, 48, 1, 1, Padding::symmetric, 1)})
    for (DType dtype : {DType::f32, DType::f16}) {
      SCOPED_TRACE(c.str());
      Tensor x = testing::random_tensor(rng, c.x_shape(), dtype).to(gpu);
      Tensor dy = testing::random_tensor(rng, c.y_shape(), dtype).to(gpu);
      Tensor dw1 = Tensor::empty(c.w_shape(), dtype, gpu), dw2 = Tensor::empty(c.w_shape(), dtype, gpu);
      Tensor db1 = Tensor::empty({c.s.c_out}, dtype, gpu), db2 = Tensor::empty({c.s.c_out}, dtype, gpu);
      cuda::conv2d_backward_weight(c.p, c.s, dtype, x.data(), dy.data(), dw1.data(), db1.data(), nullptr);
      cuda::conv2d_backward_weight(c.p, c.s, dtype, x.data(), dy.data(), dw2.data(), db2.data(), nullptr);
      const Tensor a = dw1.to(Device::cpu()), b = dw2.to(Device::cpu());
      const Tensor ab = db1.to(Device::cpu()), bb = db2.to(Device::cpu());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
      EXPECT_EQ(std::memcmp(ab.data(), bb.data(), ab.nbytes()), 0);
    }
}

#if SLIDEGRADE_HAVE_CUDNN
#define SG_CUDNN_CHECK(call)                                                                   \
  do {                                                                                         \
    const cudnnStatus_t sg_cudnn_status_ = (call);                                             \
    ASSERT_EQ(sg_cudnn_status_, CUDNN_STATUS_SUCCESS) << #call << ": " << cudnnGetErrorString(sg_cudnn_status_); \
  } while (0)

// cuDNN, NHWC, f32 without TF32, on the same device inputs: a second oracle, independent of
// the reference above. Symmetric padding only (the legacy cuDNN API has one pad per side pair).
TEST(Conv2dCuda, ForwardMatchesCudnn) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  cudnnHandle_t handle = nullptr;
  SG_CUDNN_CHECK(cudnnCreate(&handle));
  const Case cases[] = {
      make_case(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32), make_case(2, 17, 17, 40, 40, 5, 2, Padding::symmetric, 40),
      make_case(3, 14, 14, 24, 144, 1, 1, Padding::symmetric, 1), make_case(2, 33, 33, 3, 32, 3, 2, Padding::symmetric, 1),
      make_case(1, 10, 10, 32, 48, 3, 1, Padding::symmetric, 2),  make_case(1, 7, 9, 13, 5, 5, 1, Padding::symmetric, 1),
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.str());
    ASSERT_EQ(c.p.pad_top, c.p.pad_bottom);
    ASSERT_EQ(c.p.pad_left, c.p.pad_right);
    Tensor x = testing::random_tensor(rng, c.x_shape(), DType::f32).to(gpu);
    Tensor w = testing::random_tensor(rng, c.w_shape(), DType::f32).to(gpu);
    Tensor ours = Tensor::empty(c.y_shape(), DType::f32, gpu), theirs = Tensor::empty(c.y_shape(), DType::f32, gpu);
    testing::poison(ours);
    testing::poison(theirs);
    cuda::conv2d_forward(c.p, c.s, DType::f32, x.data(), w.data(), nullptr, ours.data(), nullptr);

    cudnnTensorDescriptor_t x_desc = nullptr, y_desc = nullptr;
    cudnnFilterDescriptor_t w_desc = nullptr;
    cudnnConvolutionDescriptor_t conv_desc = nullptr;
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc));
    SG_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc));
    SG_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc));
    SG_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc));
    SG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, int(c.s.n), int(c.s.c_in),
                                              int(c.s.h), int(c.s.w)));
    SG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, int(c.s.n), int(c.s.c_out),
                                              int(c.s.out_h), int(c.s.out_w)));
    SG_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, int(c.s.c_out),
                                              int(c.cg()), int(c.p.kernel_h), int(c.p.kernel_w)));
    SG_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc, int(c.p.pad_top), int(c.p.pad_left), int(c.p.stride_h),
                                                   int(c.p.stride_w), 1, 1, CUDNN_CROSS_CORRELATION,
                                                   CUDNN_DATA_FLOAT));
    SG_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv_desc, int(c.p.groups)));
    SG_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc, CUDNN_FMA_MATH));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    SG_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x_desc, w_desc, conv_desc, y_desc,
                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
    int chosen = -1;
    for (int i = 0; i < returned && chosen < 0; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) chosen = i;
    ASSERT_GE(chosen, 0) << "cuDNN has no forward algorithm for this case";
    size_t workspace_bytes = 0;
    SG_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, x_desc, w_desc, conv_desc, y_desc,
                                                           perf[chosen].algo, &workspace_bytes));
    Tensor workspace = Tensor::empty({int64_t(std::max<size_t>(workspace_bytes, 1))}, DType::u8, gpu);
    const float one = 1.0f, zero = 0.0f;
    SG_CUDNN_CHECK(cudnnConvolutionForward(handle, &one, x_desc, x.data(), w_desc, w.data(), conv_desc,
                                           perf[chosen].algo, workspace.data(), workspace_bytes, &zero, y_desc,
                                           theirs.data()));
    cuda::device_synchronize(0);
    EXPECT_TRUE(testing::all_close(ours.to(Device::cpu()), theirs.to(Device::cpu()), {5e-4, 5e-4}));  // cuDNN may pick FFT or Winograd
    cudnnDestroyConvolutionDescriptor(conv_desc);
    cudnnDestroyFilterDescriptor(w_desc);
    cudnnDestroyTensorDescriptor(y_desc);
    cudnnDestroyTensorDescriptor(x_desc);
  }
  cudnnDestroy(handle);
}
#else   // the build has no cuDNN (the emulated CUDA device never has it): the oracle skips, visibly
TEST(Conv2dCuda, ForwardMatchesCudnn) {
  SG_REQUIRE_CUDA();
  GTEST_SKIP() << "built without cuDNN (the emulated CUDA device has none): the cuDNN oracle runs on a real GPU";
}
#endif  // SLIDEGRADE_HAVE_CUDNN
#else   // !SLIDEGRADE_WITH_CUDA: the launchers are not built; the GPU tests skip visibly
TEST(Conv2dCuda, MatchesReferenceOnRandomShapes) { SG_REQUIRE_CUDA(); }
TEST(Conv2dCuda, MatchesReferenceOnKernelSelectingShapes) { SG_REQUIRE_CUDA(); }
TEST(Conv2dCuda, BackwardWeightIsDeterministic) { SG_REQUIRE_CUDA(); }
TEST(Conv2dCuda, MisalignedPointersTakeElementwisePaths) { SG_REQUIRE_CUDA(); }
#endif  // SLIDEGRADE_WITH_CUDA

}  // namespace
}  // namespace sg
