// --memory-limit on a GPU (core/allocator.h): a capped CUDA allocator refuses with a message that
// names the scope, the request and the cap; the cuBLAS workspace of the linear layers comes from
// the allocator (kernels/cuda/linear.cu), so a cuBLAS op under a cap stays under it. Skips
// without a GPU (built only with SLIDEGRADE_CUDA=ON).
#include <gtest/gtest.h>

#include <string>

#include "core/allocator.h"
#include "core/error.h"
#include "core/stream.h"
#include "core/tensor.h"
#include "kernels/cuda/linear.h"
#include "kernels/linear.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CudaMemoryLimit, CappedAllocatorRefusesAndNamesTheLimit) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  const size_t limit = allocator.stats().reserved + (size_t(64) << 20);
  const ScopedMemoryLimit cap(gpu, limit);
  const AllocationScope scope("cuda test step 3", "custom advice");
  try {
    Tensor too_big = Tensor::empty({int64_t(32) << 20}, DType::f32, gpu, "activations");  // 128 MiB
    FAIL() << "a 128 MiB allocation under a cap of 64 MiB more than reserved succeeded";
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "out of memory on cuda:0 during cuda test step 3: activations needs 128.00 MiB"))
        << message;
    EXPECT_TRUE(contains(message, "limit " + format_bytes(limit) + " (--memory-limit)")) << message;
    EXPECT_TRUE(contains(message, "To fit: custom advice")) << message;
    EXPECT_EQ(e.info().device, "cuda:0");
    EXPECT_EQ(e.info().limit, limit);
    EXPECT_EQ(e.info().requested, size_t(128) << 20);
  }
  Tensor fits = Tensor::empty({1 << 20}, DType::f32, gpu);  // 4 MiB: under the cap
  EXPECT_TRUE(fits.defined());
}

TEST(CudaMemoryLimit, CublasOpUnderACapStaysUnderIt) {
  SG_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  testing::Rng rng;
  const int64_t m = 64, k = 1280, n = 6;  // the classifier of a B0 on a batch of 64
  Tensor x = testing::random_tensor(rng, {m, k}).to(gpu);
  Tensor w = testing::random_tensor(rng, {n, k}).to(gpu);
  Tensor bias = testing::random_tensor(rng, {n}).to(gpu);
  Tensor y = Tensor::empty({m, n}, DType::f32, gpu);
  Tensor dy = testing::random_tensor(rng, {m, n}).to(gpu);
  Tensor dx = Tensor::empty({m, k}, DType::f32, gpu);
  Tensor dw = Tensor::empty({n, k}, DType::f32, gpu);
  Tensor dbias = Tensor::empty({n}, DType::f32, gpu);
  Stream stream = Stream::create(gpu);

  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  // Room for the workspace (at most 32 MiB) and a little more; nothing else is allocated below.
  const size_t limit = allocator.stats().reserved + (size_t(40) << 20);
  const ScopedMemoryLimit cap(gpu, limit);
  allocator.reset_peak();
  linear_forward(x, w, &bias, y, stream);
  linear_backward_input(dy, w, dx, stream);
  linear_backward_weight(x, dy, dw, &dbias, stream);
  stream.synchronize(gpu);

  const size_t workspace = cuda::cublas_workspace_bytes_held(0);
  EXPECT_GE(workspace, size_t(4) << 20) << "the GEMMs ran without our workspace";
  const MemoryStats stats = allocator.stats();
  EXPECT_GE(stats.in_use, workspace) << "the workspace is not counted by the allocator";
  EXPECT_LE(stats.peak_reserved, limit);
}

TEST(CudaMemoryLimit, FirstGemmUnderATinyCapNamesTheWorkspace) {
  SG_REQUIRE_CUDA();
  if (cuda::cublas_workspace_bytes_held(0) != 0)
    GTEST_SKIP() << "a GEMM ran earlier in this process (run this test alone to check the first workspace)";
  const Device gpu = Device::cuda(0);
  testing::Rng rng;
  Tensor x = testing::random_tensor(rng, {8, 32}).to(gpu);
  Tensor w = testing::random_tensor(rng, {4, 32}).to(gpu);
  Tensor y = Tensor::empty({8, 4}, DType::f32, gpu);
  Stream stream = Stream::create(gpu);
  Allocator& allocator = allocator_for(gpu);
  allocator.release_cached();
  const ScopedMemoryLimit cap(gpu, allocator.stats().reserved + (size_t(1) << 20));  // under the 4 MiB workspace
  const AllocationScope scope("classifier forward");
  try {
    linear_forward(x, w, nullptr, y, stream);
    FAIL() << "the first GEMM under a 1 MiB margin took no workspace from the allocator";
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "during classifier forward: cuBLAS workspace needs")) << message;
  }
}

}  // namespace
}  // namespace sg
