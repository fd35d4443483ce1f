// The scratch the CUDA convolution's weight gradient takes from the caching allocator is exactly
// what the memory plan counts for it (kernels/cuda_conv2d_scratch.h), for the kernels the card gets:
// scripts/test.sh runs this on each emulated card (tests/emulated_cuda/arch_dependent_tests.filter),
// the SIMT kernel on the GTX 1050 Ti, tensor cores on the T4 and the H100.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/device_code.h"
#include "core/tensor.h"
#include "kernels/conv2d.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "train/memory_plan.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

struct ScratchCase {
  const char* name;
  int64_t n, h, w, c_in, c_out, kernel, stride, groups;
  bool bias;
  DType dtype;
};

TEST(CudaConvScratch, WeightGradientScratchIsWhatThePlanCounts) {
  SG_REQUIRE_CUDA();
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  const int arch = cuda::code_architecture(0);
  const ScratchCase cases[] = {
      // Pointwise convolutions of MBConv blocks: split over pixels; tensor-core tiles (128 x 64)
      // split differently from SIMT tiles (64 x 64) for 16-bit types on sm_75+/sm_80+.
      {"pointwise expand f16", 1, 48, 48, 24, 144, 1, 1, 1, false, DType::f16},
      {"pointwise project bf16", 1, 48, 48, 144, 24, 1, 1, 1, false, DType::bf16},
      {"pointwise f32", 1, 32, 32, 16, 256, 1, 1, 1, false, DType::f32},
      // The stem (3 channels: SIMT everywhere) and a bias whose gradient sums 2304 rows in chunks.
      {"stem 3x3 stride 2 with bias", 1, 96, 96, 3, 32, 3, 2, 1, true, DType::f16},
      // Depthwise: its own kernel, partials per chunk of pixels; vectors when channels allow.
      {"depthwise 3x3 f16", 1, 40, 40, 96, 96, 3, 1, 96, false, DType::f16},
      {"depthwise 5x5 stride 2 odd channels", 1, 40, 40, 30, 30, 5, 2, 30, false, DType::f32},
  };
  Allocator& allocator = allocator_for(gpu);
  for (const ScratchCase& c : cases) {
    SCOPED_TRACE(c.name);
    Conv2dParams p;
    p.kernel_h = p.kernel_w = c.kernel;
    p.stride_h = p.stride_w = c.stride;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = c.kernel / 2;
    p.groups = c.groups;
    const Shape w_shape{c.c_out, c.kernel, c.kernel, c.c_in / c.groups};
    const Tensor x = testing::random_tensor(rng, {c.n, c.h, c.w, c.c_in}, c.dtype).to(gpu);
    const Conv2dShape s = conv2d_shape("test", p, x.shape(), w_shape);
    const Tensor dy = testing::random_tensor(rng, {s.n, s.out_h, s.out_w, s.c_out}, c.dtype).to(gpu);
    Tensor dw = Tensor::empty(w_shape, c.dtype, gpu);
    Tensor dbias = Tensor::empty({c.c_out}, c.dtype, gpu);

    const size_t before = allocator.stats().in_use;
    allocator.reset_peak();
    conv2d_backward_weight(p, x, dy, dw, c.bias ? &dbias : nullptr);
    const size_t measured = allocator.stats().peak_in_use - before;

    const std::vector<size_t> planned = cuda_conv2d_backward_weight_scratch(p, s, c.dtype, arch, c.bias);
    size_t expected = 0;
    for (size_t bytes : planned) expected += train::allocator_bytes(bytes);
    EXPECT_EQ(measured, expected) << "sm_" << arch << " code: the allocator's peak during the call, against "
                                  << planned.size() << " planned scratch blocks";
    EXPECT_FALSE(planned.empty()) << "every case here needs scratch";
    (void)dw.to_floats();  // the work ran (and any fault in it surfaces here)
  }
}

}  // namespace
}  // namespace sg
