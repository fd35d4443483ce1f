// Tensor, allocator and device runtime: shapes, copies, accounting, the cap and the fallback.
#include <gtest/gtest.h>

#include "core/allocator.h"
#include "core/tensor.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

TEST(Tensor, ShapeDtypeAndBytes) {
  Tensor t = Tensor::zeros({2, 5, 7, 3}, DType::f16);
  EXPECT_EQ(t.numel(), 210);
  EXPECT_EQ(t.nbytes(), 420u);
  EXPECT_EQ(t.shape().str(), "[2, 5, 7, 3]");
  EXPECT_EQ(t.str(), "f16[2, 5, 7, 3] on cpu");
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_THROW(t.data_as<float>(), Error);
  EXPECT_THROW((Shape{2, -1}), Error);
}

TEST(Tensor, FromFloatsRoundsAndReads) {
  Tensor t = Tensor::from_floats({1.0f, 1.0f + 1.0f / 4096, -2.5f}, {3}, DType::bf16);
  const std::vector<float> back = t.to_floats();
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], 1.0f);  // below bf16 resolution
  EXPECT_EQ(back[2], -2.5f);
  EXPECT_THROW(Tensor::from_floats({1.0f}, {2}), Error);
}

TEST(Tensor, ReshapeSharesStorage) {
  Tensor t = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = t.reshape({3, 2});
  r.data_as<float>()[0] = 9;
  EXPECT_EQ(t.data_as<float>()[0], 9);
  EXPECT_THROW(t.reshape({4}), Error);
}

TEST(Tensor, CopyChecksShapeAndDtype) {
  Tensor a = Tensor::zeros({4}, DType::f32);
  Tensor b = Tensor::from_floats({1, 2, 3, 4}, {4});
  a.copy_from(b);
  EXPECT_EQ(a.to_floats(), b.to_floats());
  Tensor c = Tensor::zeros({4}, DType::f16);
  EXPECT_THROW(a.copy_from(c), Error);
}

TEST(Allocator, CountsCurrentAndPeak) {
  Allocator& cpu = allocator_for(Device::cpu());
  cpu.reset_peak();
  const size_t before = cpu.stats().in_use;
  {
    Tensor big = Tensor::empty({1 << 20}, DType::f32);
    EXPECT_GE(cpu.stats().in_use, before + (4u << 20));
  }
  EXPECT_EQ(cpu.stats().in_use, before);
  EXPECT_GE(cpu.stats().peak_in_use, before + (4u << 20));
}

TEST(Allocator, CapThrowsWithRequestAndLimit) {
  Allocator& cpu = allocator_for(Device::cpu());
  // A freed block of the very size asked for below sits in the cache: the cap must still hold.
  { Tensor cached = Tensor::empty({1 << 20}, DType::f32); }
  const size_t in_use = cpu.stats().in_use;
  cpu.set_limit(in_use + (1u << 20));
  try {
    Tensor too_big = Tensor::empty({1 << 20}, DType::f32, Device::cpu(), "activations");
    cpu.set_limit(0);
    FAIL() << "allocation over the cap succeeded";
  } catch (const OutOfMemoryError& e) {
    cpu.set_limit(0);
    const std::string message = e.what();
    EXPECT_NE(message.find("activations needs 4.00 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("limit"), std::string::npos) << message;
  }
  Tensor fits = Tensor::empty({1 << 20}, DType::f32);  // the cap is gone again
  EXPECT_TRUE(fits.defined());
}

TEST(Allocator, ParsesAndFormatsSizes) {
  EXPECT_EQ(parse_bytes("4GiB"), size_t(4) << 30);
  EXPECT_EQ(parse_bytes("512MiB"), size_t(512) << 20);
  EXPECT_EQ(parse_bytes("2GB"), size_t(2000000000));
  EXPECT_EQ(parse_bytes("1000"), size_t(1000));
  EXPECT_THROW(parse_bytes("4 parsecs"), Error);
  EXPECT_THROW(parse_bytes("lots"), Error);
  EXPECT_EQ(format_bytes(size_t(3) << 30), "3.00 GiB");
}

TEST(Device, ParsesNamesAndFallsBack) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
  if (!cuda_available()) {
    EXPECT_FALSE(cuda_unavailable_reason().empty());
    EXPECT_EQ(default_device(), Device::cpu());
    EXPECT_THROW(parse_device("cuda:0"), Error);
    EXPECT_THROW(Tensor::empty({4}, DType::f32, Device::cuda(0)), Error);
  } else if (testing::on_emulated_cuda()) {
    EXPECT_EQ(default_device(), Device::cpu()) << "auto must never pick the emulated CUDA device (a test device)";
    EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  } else {
    EXPECT_EQ(default_device(), Device::cuda(0));
  }
}

TEST(CudaRuntime, CopiesRoundTripAndCapApplies) {
  SG_REQUIRE_CUDA();
  testing::Rng rng;
  Tensor host = testing::random_tensor(rng, {3, 17, 33, 5}, DType::bf16);
  Stream stream = Stream::create(Device::cuda(0));
  Tensor device = host.to(Device::cuda(0), stream);
  Tensor back = device.to(Device::cpu(), stream);
  EXPECT_EQ(back.to_floats(), host.to_floats());

  Allocator& gpu = allocator_for(Device::cuda(0));
  gpu.release_cached();
  const size_t reserved = gpu.stats().reserved;
  gpu.set_limit(reserved + (64u << 20));
  EXPECT_THROW(Tensor::empty({int64_t(128) << 20}, DType::f32, Device::cuda(0)), OutOfMemoryError);
  gpu.set_limit(0);
  {
    Tensor a = Tensor::empty({1 << 20}, DType::f32, Device::cuda(0));
  }
  const size_t hits = gpu.stats().cache_hits;
  Tensor again = Tensor::empty({1 << 20}, DType::f32, Device::cuda(0));
  EXPECT_EQ(gpu.stats().cache_hits, hits + 1);  // the freed block was reused

  Event start(Device::cuda(0)), end(Device::cuda(0));
  start.record(stream);
  end.record(stream);
  end.synchronize();
  EXPECT_GE(Event::elapsed_ms(start, end), 0.0f);
}

TEST(CudaRuntime, ErrorsNameTheCall) {
  SG_REQUIRE_CUDA();
  // An invalid device index is a recoverable (non-sticky) CUDA error: it must throw an
  // sg::Error naming the call, and leave the context usable.
  try {
    cuda::set_device(cuda_device_count() + 5);
    FAIL() << "cudaSetDevice on a missing device did not fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA error in cudaSetDevice"), std::string::npos) << e.what();
  }
  cuda::set_device(0);
  Tensor still_works = Tensor::zeros({16}, DType::f32, Device::cuda(0));
  EXPECT_EQ(still_works.to_floats(), std::vector<float>(16, 0.0f));
}

}  // namespace
}  // namespace sg
