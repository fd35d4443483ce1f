// Which GPU code a build holds and which a card runs (core/cuda_architectures.h), and the kernels
// each card gets (kernels/cuda_kernel_paths.h): pure logic, checked on every build.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/cuda_architectures.h"
#include "core/error.h"
#include "kernels/cuda_conv2d_scratch.h"
#include "kernels/cuda_kernel_paths.h"

namespace sg {
namespace {

TEST(CudaArchitectures, ParsesCmakeListsWithRealAndVirtualEntries) {
  const CudaArchitectures held = parse_cuda_architectures("75-real;80-real 86-real;89-real;90;120-real");
  EXPECT_EQ(held.machine_code, (std::vector<int>{75, 80, 86, 89, 90, 120}));
  EXPECT_EQ(held.ptx, (std::vector<int>{90}));
  const CudaArchitectures plain = parse_cuda_architectures("61");
  EXPECT_EQ(plain.machine_code, (std::vector<int>{61}));
  EXPECT_EQ(plain.ptx, (std::vector<int>{61}));
  const CudaArchitectures virtual_only = parse_cuda_architectures("70-virtual;;");
  EXPECT_TRUE(virtual_only.machine_code.empty());
  EXPECT_EQ(virtual_only.ptx, (std::vector<int>{70}));
  // Architecture-specific code (90a) runs on that architecture only: no PTX for later cards.
  const CudaArchitectures specific = parse_cuda_architectures("90a-real");
  EXPECT_EQ(specific.machine_code, (std::vector<int>{90}));
  EXPECT_TRUE(specific.ptx.empty());
  EXPECT_TRUE(parse_cuda_architectures("").empty());
}

TEST(CudaArchitectures, BadEntriesAreNamed) {
  for (const char* bad : {"sm_61", "7.5", "all", "90-realish", "-real"}) {
    try {
      (void)parse_cuda_architectures(std::string("75;") + bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos) << e.what();
    }
  }
}

TEST(CudaArchitectures, CardsRunTheNewestCompatibleCode) {
  const CudaArchitectures held = parse_cuda_architectures("75-real;80-real;86-real;89-real;90;120-real");
  EXPECT_EQ(loaded_cuda_architecture(held, 75), 75);  // T4, RTX 20xx
  EXPECT_EQ(loaded_cuda_architecture(held, 86), 86);  // RTX 30xx
  EXPECT_EQ(loaded_cuda_architecture(held, 87), 86);  // Jetson Orin: sm_86 code runs on sm_87
  EXPECT_EQ(loaded_cuda_architecture(held, 89), 89);  // RTX 40xx, L4
  EXPECT_EQ(loaded_cuda_architecture(held, 100), 90);  // B200: no sm_10x code, JIT of compute_90
  EXPECT_EQ(loaded_cuda_architecture(held, 121), 120);
  EXPECT_EQ(loaded_cuda_architecture(held, 61), 0);  // GTX 1050 Ti: nothing
  EXPECT_EQ(loaded_cuda_architecture(held, 70), 0);  // V100: sm_75 code does not run on sm_70

  // The old default (75;90): an RTX 3080 had no code of its own and JIT-compiled compute_75.
  const CudaArchitectures old = parse_cuda_architectures("75;90");
  EXPECT_EQ(loaded_cuda_architecture(old, 86), 75);
  const CudaArchitectures pascal = parse_cuda_architectures("61");
  EXPECT_EQ(loaded_cuda_architecture(pascal, 61), 61);
  EXPECT_EQ(loaded_cuda_architecture(pascal, 75), 61);  // PTX compute_61 JIT-compiled on a T4
}

TEST(CudaArchitectures, MissingCodeMessageSaysWhatIsHeldAndWhatToDo) {
  const CudaArchitectures held = parse_cuda_architectures("75-real;90");
  EXPECT_EQ(missing_cuda_code_reason(held, 75, "cuda:0 Tesla T4"), "");
  EXPECT_EQ(missing_cuda_code_reason(CudaArchitectures{}, 61, "emulated"), "");  // nothing to check
  const std::string why = missing_cuda_code_reason(held, 61, "cuda:0 NVIDIA GeForce GTX 1050 Ti (sm_61)");
  for (const char* part : {"GTX 1050 Ti", "needs code for sm_61", "sm_75", "PTX compute_90",
                           "-DCMAKE_CUDA_ARCHITECTURES=61", "scripts/build_pascal.sh", "--device cpu"})
    EXPECT_NE(why.find(part), std::string::npos) << part << " missing from: " << why;
  EXPECT_EQ(describe_cuda_architectures(held), "sm_75 sm_90, PTX compute_90 (JIT-compiled for newer cards)");
  EXPECT_EQ(describe_cuda_architectures(CudaArchitectures{}), "none");
}

TEST(CudaKernelPaths, PascalGetsTheSimtConvolutionAndF32Gemms) {
  EXPECT_FALSE(conv_uses_tensor_cores(DType::f16, 61));
  EXPECT_FALSE(conv_uses_tensor_cores(DType::bf16, 75));
  EXPECT_TRUE(conv_uses_tensor_cores(DType::f16, 75));
  EXPECT_TRUE(conv_uses_tensor_cores(DType::bf16, 80));
  EXPECT_FALSE(conv_uses_tensor_cores(DType::f32, 90));  // f32 stays on the SIMT kernel (no TF32)

  const std::string pascal_f16 = describe_cuda_kernel_paths(61, 61, DType::f16);
  EXPECT_NE(pascal_f16.find("SIMT implicit GEMM, f16 storage with f32 arithmetic"), std::string::npos) << pascal_f16;
  EXPECT_NE(pascal_f16.find("cuBLAS, f16 operands, f32 compute"), std::string::npos) << pascal_f16;
  const std::string pascal_bf16 = describe_cuda_kernel_paths(61, 61, DType::bf16);
  EXPECT_NE(pascal_bf16.find("cuBLAS in f32"), std::string::npos) << pascal_bf16;
  const std::string turing_bf16 = describe_cuda_kernel_paths(75, 75, DType::bf16);
  EXPECT_NE(turing_bf16.find("SIMT implicit GEMM, bf16 storage"), std::string::npos) << turing_bf16;
  EXPECT_NE(turing_bf16.find("cuBLAS, bf16 operands"), std::string::npos) << turing_bf16;
  EXPECT_NE(describe_cuda_kernel_paths(86, 86, DType::f16).find("m16n8k16"), std::string::npos);
  EXPECT_NE(describe_cuda_kernel_paths(75, 75, DType::f16).find("m16n8k8"), std::string::npos);
}

// The weight gradient's split over pixels depends on the kernel's output tile, so a card with
// tensor cores needs other scratch than a Pascal card (the memory plan asks by architecture; the
// CUDA test CudaConvScratch holds the allocator to it on each emulated card). Below ~1 GFLOP the
// split is bounded by the pixels (256 per split) on both paths; this layer (192 -> 1152 channels at
// 72 x 72) is above it.
TEST(CudaKernelPaths, TensorCoreTilesSplitTheWeightGradientDifferently) {
  const int64_t M = 1152, N = 192, K = 72 * 72;
  const ReductionSplit simt = implicit_gemm_weight_grad_split(M, N, K, 1, M * N, false);
  const ReductionSplit mma = implicit_gemm_weight_grad_split(M, N, K, 1, M * N, true);
  EXPECT_EQ(simt.splits, 10);  // 18 x 3 tiles of 64 x 64: ceil(512 / 54) splits of 544 pixels
  EXPECT_EQ(simt.k_per_split, 544);
  EXPECT_EQ(mma.splits, 18);  // 9 x 3 tiles of 128 x 64: 19 asked, 18 of 288 pixels cover them
  EXPECT_EQ(mma.k_per_split, 288);
  for (const ReductionSplit& r : {simt, mma}) EXPECT_GE(r.splits * r.k_per_split, K);

  Conv2dParams p;  // the same layer as a 1x1 convolution, batch 1
  const Conv2dShape s{1, 72, 72, N, M, 72, 72};
  const auto pascal = cuda_conv2d_backward_weight_scratch(p, s, DType::f16, 61, false);
  const auto ampere = cuda_conv2d_backward_weight_scratch(p, s, DType::f16, 86, false);
  ASSERT_EQ(pascal.size(), 1u);
  ASSERT_EQ(ampere.size(), 1u);
  EXPECT_EQ(pascal[0], size_t(10 * M * N) * sizeof(float));
  EXPECT_EQ(ampere[0], size_t(18 * M * N) * sizeof(float));
  // f32 runs the SIMT kernel on every card.
  EXPECT_EQ(cuda_conv2d_backward_weight_scratch(p, s, DType::f32, 86, false), pascal);

  // Splits cover whole multiples of 32 pixels, at least 256 pixels each unless there are fewer, and
  // never more than 256 MiB of partials.
  const ReductionSplit tiny = implicit_gemm_weight_grad_split(8, 8, 40, 1, 64, true);
  EXPECT_EQ(tiny.splits, 1);
  EXPECT_EQ(tiny.k_per_split, 64);
  const ReductionSplit huge = implicit_gemm_weight_grad_split(64, 64, int64_t(1) << 24, 1, int64_t(1) << 24, false);
  EXPECT_LE(huge.splits * (int64_t(1) << 24) * 4, int64_t(256) << 20);
}

}  // namespace
}  // namespace sg
