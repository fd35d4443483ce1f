// CUDA convolution kernels (kernels/cuda/conv2d*.cu): a case table of the shapes that select each
// kernel (tests/support/op_harness.h: every case on the fast CPU path and on CUDA against
// kernels/cpu/conv2d_ref.h), misaligned pointers, determinism of the weight gradient, cuDNN as a
// second oracle where it is built in, and the FastDivmod the kernels index with.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/conv2d_params.h"
#include "kernels/cuda/fast_divmod.h"
#include "tests/kernels/conv2d_op_case.h"
#include "tests/support/op_harness.h"

#if SLIDEGRADE_WITH_CUDA && SLIDEGRADE_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace sg {
namespace {

using testing::Conv2dGeometry;
using testing::conv2d_geometry;
using testing::conv2d_op_case;
using testing::Conv2dRun;
using testing::OpCase;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

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

// ---- The case table: CUDA (and the fast CPU path) against the reference --------------------------

// Rectangular kernels, different strides per axis and explicit (asymmetric) pads: catches any
// kh/kw, sh/sw or top/left mix-up that square cases hide.
Conv2dGeometry rect_case(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kh, int64_t kw,
                         int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t groups) {
  Conv2dParams p;
  p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw;
  p.pad_top = pt, p.pad_bottom = pb, p.pad_left = pl, p.pad_right = pr, p.groups = groups;
  return conv2d_geometry(p, n, h, w, c_in, c_out);
}

enum class Kind { dense, pointwise, grouped, depthwise };

// The case numbered `next` of one kind at one spatial size: channels either multiples of 8 (the
// vector and tensor-core paths) or not (the scalar paths), kernel 1/3/5, stride 1/2, both
// paddings. The old test drew these choices at random; they now cycle deterministically through
// the same values: aligned channels, the batch (1, 3), the stride and the padding through the bits
// 1 to 4 of next, the kernel (3, 5) through next / 3 % 2, a rectangular input (W = H + 2) in a
// third of the cases, channels through next % 5 and next / 5 % 5.
Conv2dGeometry cycled_case(size_t next, Kind kind, int64_t spatial) {
  const int64_t odd_channels[] = {1, 3, 5, 7, 13};
  const int64_t aligned_channels[] = {8, 16, 24, 32, 40};
  const bool aligned = (next >> 1) & 1;
  const int64_t* channels = aligned ? aligned_channels : odd_channels;
  const int64_t c_in = channels[next % 5], c_out = channels[(next / 5) % 5];
  const int64_t n = (next >> 2) & 1 ? 3 : 1;
  const int64_t stride = (next >> 3) & 1 ? 2 : 1;
  const Padding padding = (next >> 4) & 1 ? Padding::tf_same : Padding::symmetric;
  const int64_t k = kind == Kind::pointwise ? 1 : ((next / 3) % 2 ? 5 : 3);
  // Rectangular inputs now and then, so H and W are never confused.
  const int64_t w = spatial > 1 && next % 3 == 0 ? spatial + 2 : spatial;
  switch (kind) {
    case Kind::dense:
    case Kind::pointwise: return conv2d_geometry(n, spatial, w, c_in, c_out, k, stride, padding, 1);
    case Kind::grouped: return conv2d_geometry(n, spatial, w, 2 * c_in, 2 * c_out, k, stride, padding, 2);
    case Kind::depthwise: {
      const int64_t c = aligned ? 8 * int64_t(1 + next % 6) : odd_channels[next % 5] + 2;  // odd: 3..15
      return conv2d_geometry(n, spatial, w, c, c, k, stride, padding, c);
    }
  }
  return {};
}

// The shapes that pick each specialised kernel, fixed so that every run covers them: the
// depthwise 3x3/5x5 at stride 1/2 (vector path), the tensor-core GEMM with a K that is not a
// multiple of the 32-wide tile, M and N past one tile, and the scalar fallbacks.
std::vector<Conv2dGeometry> kernel_selecting_shapes() {
  return {
      conv2d_geometry(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32),    // depthwise 3x3 s1
      conv2d_geometry(2, 18, 18, 48, 48, 3, 2, Padding::tf_same, 48),      // depthwise 3x3 s2, pads (0,1)
      conv2d_geometry(1, 17, 19, 24, 24, 5, 1, Padding::tf_same, 24),      // depthwise 5x5 s1
      conv2d_geometry(3, 16, 16, 40, 40, 5, 2, Padding::tf_same, 40),      // depthwise 5x5 s2, pads (1,2)
      conv2d_geometry(1, 9, 9, 11, 11, 3, 2, Padding::symmetric, 11),      // depthwise scalar
      conv2d_geometry(1, 9, 9, 264, 264, 3, 1, Padding::symmetric, 264),   // depthwise, two channel blocks
      conv2d_geometry(3, 20, 20, 24, 144, 1, 1, Padding::symmetric, 1),    // pointwise expand, M > 128
      conv2d_geometry(3, 20, 20, 144, 24, 1, 1, Padding::symmetric, 1),    // pointwise project
      conv2d_geometry(1, 15, 15, 40, 72, 1, 1, Padding::symmetric, 1),     // K = 40: a partial k tile
      conv2d_geometry(2, 33, 33, 3, 32, 3, 2, Padding::tf_same, 1),        // B0 stem: Cin 3, scalar
      conv2d_geometry(1, 12, 12, 16, 136, 3, 2, Padding::tf_same, 1),      // dense 3x3 s2, N > 128
      conv2d_geometry(1, 10, 10, 32, 48, 3, 1, Padding::symmetric, 2),     // grouped, aligned
      conv2d_geometry(1, 6, 6, 200, 8, 1, 1, Padding::symmetric, 1),       // backward weight N = 200
      conv2d_geometry(2, 13, 13, 16, 16, 7, 1, Padding::symmetric, 16),    // depthwise 7x7: generic vector kernel
      conv2d_geometry(1, 11, 11, 16, 16, 3, 3, Padding::symmetric, 16),    // depthwise 3x3 s3: generic vector kernel
      conv2d_geometry(3, 28, 28, 16, 24, 1, 1, Padding::symmetric, 1),     // 2352 pixels: two-pass dbias sum
      rect_case(2, 12, 15, 24, 24, 3, 5, 2, 1, 1, 0, 2, 1, 24),  // depthwise 3x5, strides 2/1
      rect_case(1, 9, 14, 16, 24, 1, 3, 1, 2, 0, 0, 1, 1, 1),    // dense 1x3, strides 1/2 (MMA)
      rect_case(2, 10, 11, 5, 7, 3, 2, 2, 3, 2, 1, 0, 1, 1),     // dense 3x2, strides 2/3 (scalar)
  };
}

// Per dtype: every kind at every spatial size twice, with a bias (and its gradient) the first time
// and without it the second; then the kernel-selecting shapes, with a bias.
std::vector<OpCase> conv2d_cuda_cases() {
  std::vector<OpCase> cases;
  size_t next = 0;
  for (DType dtype : kFloatTypes)
    for (Kind kind : {Kind::dense, Kind::pointwise, Kind::grouped, Kind::depthwise})
      for (int64_t spatial : {1, 3, 7, 17, 33})
        for (int repeat = 0; repeat < 2; ++repeat, ++next)
          cases.push_back(conv2d_op_case("conv2d", dtype, cycled_case(next, kind, spatial), repeat == 0, repeat == 0));
  for (DType dtype : kFloatTypes)
    for (const Conv2dGeometry& g : kernel_selecting_shapes())
      cases.push_back(conv2d_op_case("conv2d kernel-selecting", dtype, g, true, true));
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Conv2dCuda", "", conv2d_cuda_cases);

// Channels that allow the vector and tensor-core paths, but pointers that are not 16-byte
// aligned: the launchers must check the pointers and fall back to element-wise access. The run
// copies each operand one element into a larger device buffer and calls the CUDA launchers on
// those pointers, so it is a CUDA-only table, run by its own TEST.
std::vector<OpCase> misaligned_cases() {
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes)
    for (const Conv2dGeometry& g : {conv2d_geometry(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32),  // depthwise 3x3 s1
                                    conv2d_geometry(3, 20, 20, 24, 144, 1, 1, Padding::symmetric, 1),  // pointwise
                                    conv2d_geometry(1, 12, 12, 16, 136, 3, 2, Padding::tf_same, 1)})   // dense 3x3 s2
      cases.push_back(conv2d_op_case("conv2d", dtype, g, true, true, Conv2dRun::misaligned));
  return cases;
}

TEST(Conv2dCuda, MisalignedPointersTakeElementwisePaths) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  testing::run_op_cases(misaligned_cases(), Device::cuda(0), rng);
}

#if SLIDEGRADE_WITH_CUDA
// Backward weight adds its partial sums in an order fixed by the shapes: two runs give the
// same bits.
TEST(Conv2dCuda, BackwardWeightIsDeterministic) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  for (const Conv2dGeometry& c : {conv2d_geometry(3, 33, 33, 32, 32, 3, 1, Padding::symmetric, 32),
                        conv2d_geometry(3, 33, 33, 24, 48, 1, 1, Padding::symmetric, 1)})
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
  const Conv2dGeometry cases[] = {
      conv2d_geometry(2, 17, 17, 32, 32, 3, 1, Padding::symmetric, 32), conv2d_geometry(2, 17, 17, 40, 40, 5, 2, Padding::symmetric, 40),
      conv2d_geometry(3, 14, 14, 24, 144, 1, 1, Padding::symmetric, 1), conv2d_geometry(2, 33, 33, 3, 32, 3, 2, Padding::symmetric, 1),
      conv2d_geometry(1, 10, 10, 32, 48, 3, 1, Padding::symmetric, 2),  conv2d_geometry(1, 7, 9, 13, 5, 5, 1, Padding::symmetric, 1),
  };
  for (const Conv2dGeometry& c : cases) {
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
TEST(Conv2dCuda, BackwardWeightIsDeterministic) { SG_REQUIRE_CUDA(); }
#endif  // SLIDEGRADE_WITH_CUDA

}  // namespace
}  // namespace sg
