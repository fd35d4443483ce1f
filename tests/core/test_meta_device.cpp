// The meta device (core/meta_device.h): tensors with shapes and no values, an allocator that counts
// as the real ones do, kernels that allocate their target's scratch, and a session that records
// what was live and what was saved for backward.
#include <gtest/gtest.h>

#include <string>

#include "core/allocator.h"
#include "core/meta_device.h"
#include "kernels/activation.h"
#include "kernels/conv2d.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "kernels/cuda_kernel_paths.h"
#include "kernels/linear.h"
#include "nn/context.h"
#include "nn/conv2d.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

TEST(MetaDevice, TensorsCountRoundedBytesAndHaveNoValues) {
  meta::Session session(meta::Target{});
  const Tensor a = Tensor::empty({1000}, DType::f32, Device::meta());
  const Tensor b = Tensor::empty({3, 5}, DType::f16, Device::meta());
  EXPECT_EQ(a.device(), Device::meta());
  EXPECT_EQ(a.str(), "f32[1000] on meta");
  EXPECT_NE(a.data(), b.data());
  EXPECT_EQ(session.in_use(), Allocator::round_size(4000) + Allocator::round_size(30));
  EXPECT_EQ(allocator_for(Device::meta()).stats().in_use, session.in_use());
  testing::expect_error_containing([&] { (void)a.to_floats(); }, "has no values");
  testing::expect_error_containing([&] { (void)a.to(Device::cpu()); }, "has no values");
  // Onto meta: nothing to copy, but the shapes must still agree.
  Tensor c = Tensor::empty({1000}, DType::f32, Device::meta());
  c.copy_from(Tensor::zeros({1000}, DType::f32));
  testing::expect_error_containing([&] { c.copy_from(Tensor::zeros({999}, DType::f32)); }, "does not match");
}

TEST(MetaDevice, FreedBlocksAreNotReusedAndThePeakIsRecorded) {
  meta::Session session(meta::Target{});
  const void* first = nullptr;
  {
    const Tensor t = Tensor::empty({1 << 20}, DType::f32, Device::meta());
    first = t.data();
  }
  const Tensor u = Tensor::empty({1 << 20}, DType::f32, Device::meta());
  EXPECT_NE(u.data(), first) << "a bump allocator: every block of the process has its own address";
  EXPECT_EQ(session.peak(), Allocator::round_size(4 << 20));
  EXPECT_EQ(session.in_use(), Allocator::round_size(4 << 20));
  const std::vector<meta::BlockLife> blocks = session.blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_TRUE(blocks[0].live_at(session.peak_event()));
  EXPECT_FALSE(blocks[1].live_at(session.peak_event()));
}

TEST(MetaDevice, OneSessionAtATimeAndKernelsNeedOne) {
  const Tensor x = Tensor::empty({4, 8}, DType::f32, Device::meta());
  Tensor y = Tensor::empty({4, 8}, DType::f32, Device::meta());
  const Tensor w = Tensor::empty({8, 8}, DType::f32, Device::meta());
  // Element-wise kernels need no target; a GEMM does (its scratch is the target's).
  activation_forward(Activation::relu, x, y);
  testing::expect_error_containing([&] { linear_forward(x, w, nullptr, y); }, "outside a meta::Session");
  meta::Session session(meta::Target{});
  testing::expect_error_containing([&] { meta::Session second(meta::Target{}); }, "another meta session is open");
  linear_forward(x, w, nullptr, y);
  EXPECT_EQ(session.macs(), 4 * 8 * 8);
}

TEST(MetaDevice, KernelsCheckTheirArgumentsAsOnAnyDevice) {
  meta::Session session(meta::Target{});
  const Tensor x = Tensor::empty({4, 8}, DType::f32, Device::meta());
  Tensor y = Tensor::empty({4, 9}, DType::f32, Device::meta());
  testing::expect_error_containing([&] { activation_forward(Activation::relu, x, y); }, "activation_forward");
  Tensor on_cpu = Tensor::empty({4, 8}, DType::f32);
  testing::expect_error_containing([&] { activation_forward(Activation::relu, x, on_cpu); }, "meta");
}

// A convolution's scratch on meta with the CPU as target is what the CPU kernel takes from the
// CPU allocator for the same call, pass by pass (f32 and f16: the f16 kernels convert in scratch).
TEST(MetaDevice, CpuConvolutionScratchEqualsTheCpuKernels) {
  testing::Rng rng;
  for (const DType dtype : {DType::f32, DType::f16}) {
    const int64_t n = 2, h = rng.integer(9, 40), w = rng.integer(9, 40);
    const int64_t c_in = 8, c_out = 16, k = 3;
    const Conv2dParams p = make_conv2d_params(k, k, 2, Padding::tf_same, h, w);
    const int64_t oh = conv2d_output_extent(h, k, 2, p.pad_top, p.pad_bottom);
    const int64_t ow = conv2d_output_extent(w, k, 2, p.pad_left, p.pad_right);
    auto peak_of = [&](Device device, auto&& run) {
      const Tensor x = testing::random_tensor(rng, {n, h, w, c_in}, dtype).to(device);
      const Tensor wt = testing::random_tensor(rng, {c_out, k, k, c_in}, dtype).to(device);
      const Tensor dy = testing::random_tensor(rng, {n, oh, ow, c_out}, dtype).to(device);
      Tensor y = Tensor::empty({n, oh, ow, c_out}, dtype, device);
      Tensor dx = Tensor::empty(x.shape(), dtype, device);
      Tensor dw = Tensor::empty(wt.shape(), dtype, device);
      Allocator& allocator = allocator_for(device);
      std::vector<size_t> peaks;
      for (int pass = 0; pass < 3; ++pass) {
        allocator.release_cached();
        allocator.reset_peak();
        const size_t before = allocator.stats().in_use;
        run(pass, x, wt, dy, y, dx, dw);
        peaks.push_back(allocator.stats().peak_in_use - before);
      }
      return peaks;
    };
    auto passes = [&](int pass, const Tensor& x, const Tensor& wt, const Tensor& dy, Tensor& y, Tensor& dx, Tensor& dw) {
      if (pass == 0) conv2d_forward(p, x, wt, nullptr, y);
      if (pass == 1) conv2d_backward_input(p, dy, wt, dx);
      if (pass == 2) conv2d_backward_weight(p, x, dy, dw, nullptr);
    };
    const std::vector<size_t> on_cpu = peak_of(Device::cpu(), passes);
    meta::Session session(meta::Target{});
    const std::vector<size_t> on_meta = peak_of(Device::meta(), passes);
    EXPECT_EQ(on_meta, on_cpu) << dtype_name(dtype) << " " << h << "x" << w;
    EXPECT_GT(on_cpu[0] + on_cpu[1] + on_cpu[2], 0u) << "the CPU kernels take scratch for a 3x3 convolution";
    EXPECT_EQ(session.macs(), n * oh * ow * c_out * k * k * c_in);
  }
}

// With a CUDA card as target, only the weight gradient takes scratch: the blocks the CUDA launcher
// sizes with cuda_conv2d_backward_weight_scratch for that card's code.
TEST(MetaDevice, CudaTargetConvolutionScratchIsTheLaunchersForTheCard) {
  const Conv2dParams p = make_conv2d_params(3, 3, 1, Padding::tf_same, 56, 56);
  Conv2dShape s;
  s.n = 4, s.h = 56, s.w = 56, s.c_in = 32, s.c_out = 64, s.out_h = 56, s.out_w = 56;
  for (const int arch : {61, 75, 90}) {
    meta::Session session(meta::Target{true, arch, false});
    const Tensor x = Tensor::empty({4, 56, 56, 32}, DType::f16, Device::meta());
    const Tensor dy = Tensor::empty({4, 56, 56, 64}, DType::f16, Device::meta());
    Tensor dw = Tensor::empty({64, 3, 3, 32}, DType::f16, Device::meta());
    session.reset_peak();
    const size_t before = session.in_use();
    conv2d_backward_weight(p, x, dy, dw, nullptr);
    size_t expected = 0;
    for (const size_t bytes : cuda_conv2d_backward_weight_scratch(p, s, DType::f16, arch, false))
      expected += Allocator::round_size(bytes);
    EXPECT_EQ(session.peak() - before, expected) << "sm_" << arch;
    EXPECT_EQ(session.in_use(), before) << "scratch lives for one call";
  }
}

// The cuBLAS workspace is taken at the first GEMM and kept; not at all when the target holds it.
TEST(MetaDevice, CublasWorkspaceIsTakenOnceUnlessHeld) {
  for (const bool held : {false, true}) {
    meta::Session session(meta::Target{true, 75, held});
    const Tensor x = Tensor::empty({4, 8}, DType::f16, Device::meta());
    const Tensor w = Tensor::empty({8, 8}, DType::f16, Device::meta());
    Tensor y = Tensor::empty({4, 8}, DType::f16, Device::meta());
    const size_t before = session.in_use();
    linear_forward(x, w, nullptr, y);
    linear_forward(x, w, nullptr, y);
    EXPECT_EQ(session.in_use() - before, held ? 0 : Allocator::round_size(cublas_workspace_bytes(75)));
    EXPECT_EQ(session.kept("cuBLAS workspace") != nullptr, !held);
  }
}

// A module's forward on meta keeps what its backward needs, and the session knows it was saved
// until the backward took it.
TEST(MetaDevice, WhatAContextSavesIsMarkedUntilBackwardTakesIt) {
  meta::Session session(meta::Target{});
  nn::Conv2d conv("conv", nn::Conv2dOptions{8, 16, 3, 1, 1, Padding::tf_same, false}, Device::meta(), 1);
  const Tensor x = Tensor::empty({2, 10, 10, 8}, DType::f32, Device::meta());
  nn::Context ctx(/*keep_for_backward=*/true);
  const Tensor y = conv.forward(ctx, x);
  EXPECT_EQ(session.saved_bytes(), Allocator::round_size(x.nbytes()));
  const std::optional<meta::BlockLife> saved_input = session.block_of(x.data());
  ASSERT_TRUE(saved_input.has_value());
  const Tensor later = Tensor::empty({1}, DType::f32, Device::meta());  // an event after the save
  EXPECT_TRUE(session.block_of(x.data())->saved_at(session.block_of(later.data())->allocated_at));
  const Tensor dy = Tensor::empty(y.shape(), DType::f32, Device::meta());
  (void)conv.backward(ctx, dy);
  EXPECT_EQ(session.saved_bytes(), 0u);
  EXPECT_EQ(ctx.saved_count(), 0u);
}

}  // namespace
}  // namespace sg
