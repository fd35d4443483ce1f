// normalize_input (kernels/normalize_input.h): a case table (tests/support/op_harness.h) run bit
// for bit against the reference on the fast CPU path and CUDA, and bad arguments. The trainer's use, against its host normalisation: tests/train/test_model_input.cpp.
#include <gtest/gtest.h>

#include <limits>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/normalize_input_ref.h"
#include "kernels/normalize_input.h"
#include "tests/support/op_harness.h"

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

// ---- The case table: bit for bit against the reference on every device ----------------------------
// The product and the sum are rounded separately on every path.

testing::OpCase normalize_input_case(const Shape& shape, DType dtype) {
  const int channels = int(shape[3]);
  testing::OpCase k;
  k.op = "normalize_input";
  k.description = shape.str() + " u8 -> " + std::string(dtype_name(dtype));
  k.outputs = {{.name = "y", .exact = true}};
  // Inputs: the pixels; scalars: scale then shift, one per channel.
  k.make_inputs = [=](testing::Rng& rng) {
    Tensor x = random_pixels(rng, shape);
    std::vector<float> scale, shift;
    random_affine(rng, channels, scale, shift);
    scale.insert(scale.end(), shift.begin(), shift.end());
    return testing::OpInputs({x}, scale);
  };
  k.reference = [=](const testing::OpInputs& i) {
    const std::span<const float> affine(i.scalars);
    return testing::OpOutputs{reference(i.tensors[0], {affine.begin(), affine.begin() + channels},
                                        {affine.begin() + channels, affine.end()}, dtype)};
  };
  // On a stream of its own (CUDA): the op takes one, and the default stream would hide a missing
  // hand-over.
  k.run = [=](const testing::OpInputs& i, testing::OpOutputs& o) {
    const std::span<const float> affine(i.scalars);
    const Device device = o[0].device();
    const Stream stream = Stream::create(device);
    normalize_input(i.tensors[0], affine.first(size_t(channels)), affine.subspan(size_t(channels)), o[0], stream);
    stream.synchronize(device);
  };
  k.bytes = double(shape.numel() * (1 + dtype_size(dtype)));
  return k;
}

std::vector<testing::OpCase> normalize_input_cases() {
  // 2 x 96 x 128 x 3 = 73728 values: more than one parallel block, and a block boundary that
  // falls inside a pixel (8192 is not a multiple of 3).
  const Shape shapes[] = {{1, 1, 1, 1}, {2, 3, 5, 2}, {3, 7, 5, 3}, {1, 4, 9, 4}, {2, 96, 128, 3}};
  std::vector<testing::OpCase> cases;
  for (const Shape& shape : shapes)
    for (DType dtype : kFloatTypes) cases.push_back(normalize_input_case(shape, dtype));
  return cases;
}
[[maybe_unused]] const bool kRegistered =
    testing::register_op_tests("NormalizeInput", "", normalize_input_cases);

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
