// The trainer's input path (grading/model_input.h): the uint8 mosaics normalised by the op
// (normalize_mosaics, what the trainer now uploads and runs on the device) give exactly the bits
// of the host normalisation it replaced (mosaics_to_input), in f32, and in f16/bf16 exactly the
// cast of those values (what EfficientNet::forward did to the f32 input).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "grading/model_input.h"
#include "kernels/cast.h"
#include "tests/support/testing.h"

namespace sg::grading {
namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

std::vector<InputNormalization> normalizations(testing::Rng& rng) {
  InputNormalization imagenet;  // the default, inverted
  InputNormalization plain = imagenet;
  plain.invert = false;
  InputNormalization drawn;
  for (size_t c = 0; c < 3; ++c) {
    drawn.mean[c] = rng.uniform(0.0f, 1.0f);
    drawn.std[c] = rng.uniform(0.05f, 1.0f);
  }
  drawn.invert = rng.integer(0, 1) == 1;
  return {imagenet, plain, drawn};
}

TEST(ModelInput, NormalizeMosaicsGivesTheHostNormalisationsBits) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  // 3 x 64 x 96 mosaics: 55296 values, and 2 x 128 x 128 (98304: parallel blocks).
  const Shape shapes[] = {{3, 64, 96, 3}, {2, 128, 128, 3}, {1, 1, 1, 3}};
  for (const Shape& shape : shapes)
    for (const InputNormalization& normalization : normalizations(rng)) {
      SCOPED_TRACE(::testing::Message() << shape.str() << " invert " << normalization.invert << " mean "
                                        << normalization.mean[0] << " std " << normalization.std[0]);
      std::vector<uint8_t> pixels(size_t(shape.numel()));
      for (uint8_t& p : pixels) p = uint8_t(rng.integer(0, 255));
      pixels.front() = 0;
      pixels.back() = 255;
      const Tensor host = mosaics_to_input(pixels, shape[0], shape[1], shape[2], normalization);
      Tensor u8 = Tensor::empty(shape, DType::u8);
      std::memcpy(u8.data(), pixels.data(), pixels.size());
      EXPECT_TRUE(same_bytes(normalize_mosaics(u8, DType::f32, normalization), host));
      for (DType dtype : {DType::f16, DType::bf16}) {
        Tensor cast_host = Tensor::empty(shape, dtype);
        cast(host, cast_host);
        EXPECT_TRUE(same_bytes(normalize_mosaics(u8, dtype, normalization), cast_host)) << dtype_name(dtype);
      }
    }
}

TEST(ModelInput, NormalizeMosaicsOnTheGpuGivesTheHostNormalisationsBits) {
  SG_REQUIRE_CUDA();
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  const Stream stream = Stream::create(gpu);
  const Shape shape{2, 64, 96, 3};
  for (const InputNormalization& normalization : normalizations(rng)) {
    std::vector<uint8_t> pixels(size_t(shape.numel()));
    for (uint8_t& p : pixels) p = uint8_t(rng.integer(0, 255));
    const Tensor host = mosaics_to_input(pixels, shape[0], shape[1], shape[2], normalization);
    Tensor u8 = Tensor::empty(shape, DType::u8);
    std::memcpy(u8.data(), pixels.data(), pixels.size());
    const Tensor on_gpu = normalize_mosaics(u8.to(gpu, stream), DType::f32, normalization, stream);
    EXPECT_EQ(on_gpu.device(), gpu);
    stream.synchronize(gpu);
    EXPECT_TRUE(same_bytes(on_gpu.to(Device::cpu(), stream), host));
  }
}

TEST(ModelInput, NormalizeMosaicsRejectsWhatIsNotAMosaicBatch) {
  InputNormalization n;
  EXPECT_THROW(normalize_mosaics(Tensor::zeros({1, 2, 2, 3}, DType::f32), DType::f32, n), Error);
  EXPECT_THROW(normalize_mosaics(Tensor::zeros({1, 2, 2, 4}, DType::u8), DType::f32, n), Error);
  EXPECT_THROW(normalize_mosaics(Tensor(), DType::f32, n), Error);
  n.std[1] = 0.0f;
  EXPECT_THROW(normalize_mosaics(Tensor::zeros({1, 2, 2, 3}, DType::u8), DType::f32, n), Error);
}

}  // namespace
}  // namespace sg::grading
