// normalize_input (kernels/normalize_input.h): the fast CPU path against the reference, the CUDA
// kernel against the CPU (bit for bit: the product and the sum are rounded separately on both),
// and bad arguments. The trainer's use, against its host normalisation: tests/train/test_model_input.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/normalize_input_ref.h"
#include "kernels/normalize_input.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

constexpr DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

Tensor random_pixels(testing::Rng& rng, Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::u8);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<uint8_t>()[i] = uint8_t(rng.integer(0, 255));
  // Both ends of the range, where the values are largest.
  t.data_as<uint8_t>()[0] = 0;
  t.data_as<uint8_t>()[t.numel() - 1] = 255;
  return t;
}

// Random coefficients of the size normalisations have (ImageNet's: |scale| ~ 0.017, |shift| ~ 2).
void random_affine(testing::Rng& rng, int channels, std::vector<float>& scale, std::vector<float>& shift) {
  scale.resize(size_t(channels));
  shift.resize(size_t(channels));
  for (int c = 0; c < channels; ++c) {
    scale[size_t(c)] = rng.uniform(-0.03f, 0.03f);
    shift[size_t(c)] = rng.uniform(-2.5f, 2.5f);
  }
}

Tensor reference(const Tensor& x, const std::vector<float>& scale, const std::vector<float>& shift, DType dtype) {
  Tensor y = Tensor::empty(x.shape(), dtype);
  const int channels = int(x.dim(3));
  const int64_t pixels = x.numel() / channels;
  dispatch_floating(dtype, "test", [&](auto tag) {
    using D = typename decltype(tag)::type;
    cpu::ref::normalize_input(x.data_as<uint8_t>(), pixels, channels, scale.data(), shift.data(), y.data_as<D>());
  });
  return y;
}

TEST(NormalizeInput, CpuMatchesTheReferenceBitForBit) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  // 2 x 96 x 128 x 3 = 73728 values: more than one parallel block, and a block boundary that
  // falls inside a pixel (8192 is not a multiple of 3).
  const Shape shapes[] = {{1, 1, 1, 1}, {2, 3, 5, 2}, {3, 7, 5, 3}, {1, 4, 9, 4}, {2, 96, 128, 3}};
  for (const Shape& shape : shapes)
    for (DType dtype : kFloatTypes) {
      SCOPED_TRACE(::testing::Message() << shape.str() << " -> " << dtype_name(dtype));
      const Tensor x = random_pixels(rng, shape);
      std::vector<float> scale, shift;
      random_affine(rng, int(shape[3]), scale, shift);
      Tensor y = Tensor::empty(shape, dtype);
      testing::poison(y);
      normalize_input(x, scale, shift, y);
      EXPECT_TRUE(testing::same_bits(y, reference(x, scale, shift, dtype)));
    }
}

TEST(NormalizeInput, CudaBitIdenticalToCpu) {
  SG_REQUIRE_CUDA();
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  const Stream stream = Stream::create(gpu);
  const Shape shapes[] = {{1, 1, 1, 1}, {2, 3, 5, 2}, {3, 7, 5, 3}, {1, 4, 9, 4}, {2, 96, 128, 3}};
  for (const Shape& shape : shapes)
    for (DType dtype : kFloatTypes) {
      SCOPED_TRACE(::testing::Message() << shape.str() << " -> " << dtype_name(dtype));
      const Tensor x = random_pixels(rng, shape);
      std::vector<float> scale, shift;
      random_affine(rng, int(shape[3]), scale, shift);
      Tensor cpu_y = Tensor::empty(shape, dtype);
      normalize_input(x, scale, shift, cpu_y);
      const Tensor x_gpu = x.to(gpu, stream);
      Tensor y_gpu = Tensor::empty(shape, dtype, gpu, stream);
      testing::poison(y_gpu);
      normalize_input(x_gpu, scale, shift, y_gpu, stream);
      stream.synchronize(gpu);
      EXPECT_TRUE(testing::same_bits(y_gpu.to(Device::cpu(), stream), cpu_y));
    }
}

TEST(NormalizeInput, RejectsBadArguments) {
  const std::vector<float> three(3, 0.5f), two(2, 0.5f);
  const Tensor x = Tensor::zeros({1, 2, 2, 3}, DType::u8);
  Tensor y = Tensor::zeros({1, 2, 2, 3}, DType::f32);
  EXPECT_NO_THROW(normalize_input(x, three, three, y));
  Tensor wrong_shape = Tensor::zeros({1, 2, 3, 3}, DType::f32);
  EXPECT_THROW(normalize_input(x, three, three, wrong_shape), Error);
  Tensor integers = Tensor::zeros({1, 2, 2, 3}, DType::i32);
  EXPECT_THROW(normalize_input(x, three, three, integers), Error);
  EXPECT_THROW(normalize_input(Tensor::zeros({1, 2, 2, 3}, DType::f32), three, three, y), Error);  // x not u8
  EXPECT_THROW(normalize_input(x, two, three, y), Error);
  EXPECT_THROW(normalize_input(x, three, two, y), Error);
  EXPECT_THROW(normalize_input(Tensor::zeros({2, 2, 3}, DType::u8), three, three, y), Error);  // not NHWC
  const std::vector<float> five(5, 0.5f);
  Tensor five_channels = Tensor::zeros({1, 1, 1, 5}, DType::f32);
  EXPECT_THROW(normalize_input(Tensor::zeros({1, 1, 1, 5}, DType::u8), five, five, five_channels), Error);
  const std::vector<float> not_finite{0.5f, std::numeric_limits<float>::infinity(), 0.5f};
  EXPECT_THROW(normalize_input(x, not_finite, three, y), Error);
  try {
    normalize_input(x, two, three, y);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("normalize_input"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sg
