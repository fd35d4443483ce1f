// Dropout and drop-connect: the mask against a direct philox_uniform loop, fast CPU vs
// reference, the scale, p = 0 and p = 1, backward = same mask, CUDA bit-exact vs CPU, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/philox.h"
#include "kernels/cpu/dropout_ref.h"
#include "kernels/dropout.h"
#include "kernels/dropout_math.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;
using testing::same_bits;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

DropoutParams random_params(Rng& rng, double p) {
  DropoutParams params;
  params.p = p;
  params.seed = rng.engine()();
  params.offset = rng.engine()();
  return params;
}

// Backward (the same mask applied to dy) against central differences of the forward, in
// double: the mask is a function of (seed, offset, index) only, so the forward is linear in x.
TEST(Dropout, BackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const DropoutParams params = random_params(rng, 0.4);
  const float scale = float(1.0 / (1.0 - params.p));
  for (bool per_sample : {false, true}) {
    SCOPED_TRACE(per_sample ? "drop-connect" : "dropout");
    const int64_t N = 5, per = 7, n = N * per;
    const std::vector<double> x = testing::random_doubles(rng, size_t(n));
    const std::vector<double> g = testing::random_doubles(rng, size_t(n));
    auto apply = [&](const std::vector<double>& in, std::vector<double>& out) {
      out.resize(in.size());
      if (per_sample)
        cpu::ref::drop_connect(in.data(), out.data(), N, per, float(params.p), scale, params.seed, params.offset);
      else
        cpu::ref::dropout(in.data(), out.data(), n, float(params.p), scale, params.seed, params.offset);
    };
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y;
      apply(in, y);
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
      return s;
    };
    std::vector<double> dx;
    apply(g, dx);  // backward: dx = mask * scale * dy
    EXPECT_TRUE(testing::gradient_matches(loss, x, dx));
  }
}

// The mask the op applies, read off an all-ones input, equals a direct philox_uniform loop.
TEST(Dropout, MaskEqualsDirectPhiloxLoop) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (int64_t n : {1, 3, 4, 7, 17, 33, 4099}) {
    const DropoutParams params = random_params(rng, 0.3);
    const Tensor ones = Tensor::from_floats(std::vector<float>(size_t(n), 1.0f), {n});
    Tensor y = Tensor::empty({n}, DType::f32);
    testing::poison(y);
    dropout_forward(params, ones, y);
    const float scale = float(1.0 / (1.0 - 0.3));
    const float* out = y.data_as<float>();
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = philox_uniform(params.seed, params.offset, uint64_t(i)) >= 0.3f;
      ASSERT_EQ(out[i], keep ? scale : 0.0f) << "element " << i << " of " << n;
      kept += keep;
    }
    if (n == 4099) {
      EXPECT_NEAR(double(kept) / double(n), 0.7, 0.05);
    }
  }
}

TEST(Dropout, DropConnectMaskEqualsDirectPhiloxLoop) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t N = 64;
  const DropoutParams params = random_params(rng, 0.2);
  const Tensor ones = Tensor::from_floats(std::vector<float>(size_t(N * 3 * 3 * 5), 1.0f), {N, 3, 3, 5});
  Tensor y = Tensor::empty(ones.shape(), DType::f32);
  testing::poison(y);
  drop_connect_forward(params, ones, y);
  const float scale = float(1.0 / 0.8);
  for (int64_t n = 0; n < N; ++n) {
    const bool keep = philox_uniform(params.seed, params.offset, uint64_t(n)) >= 0.2f;
    for (int64_t j = 0; j < 45; ++j) {
      ASSERT_EQ(y.data_as<float>()[n * 45 + j], keep ? scale : 0.0f) << n;
    }
  }
}

TEST(Dropout, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : {Shape{1, 1, 1, 5}, Shape{3, 7, 7, 3}, Shape{1, 17, 17, 24}, Shape{3, 33, 33, 5}})
      for (double p : {0.0, 0.1, 0.5, 0.9, 1.0}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " p=" << p);
        const DropoutParams params = random_params(rng, p);
        const Tensor x = testing::random_tensor(rng, shape, dtype, -4, 4);
        Tensor y = Tensor::empty(shape, dtype), expected = Tensor::empty(shape, dtype);
        Tensor yc = Tensor::empty(shape, dtype), expected_c = Tensor::empty(shape, dtype);
        testing::poison(y);
        testing::poison(yc);
        dropout_forward(params, x, y);
        drop_connect_forward(params, x, yc);
        const float scale = math::dropout_scale(p);
        dispatch_floating(dtype, "test", [&](auto tag) {
          using T = typename decltype(tag)::type;
          cpu::ref::dropout(x.data_as<T>(), expected.data_as<T>(), x.numel(), float(p), scale, params.seed,
                            params.offset);
          cpu::ref::drop_connect(x.data_as<T>(), expected_c.data_as<T>(), shape[0], x.numel() / shape[0], float(p),
                                 scale, params.seed, params.offset);
        });
        // The same float product on both paths: bit-identical.
        EXPECT_TRUE(same_bits(y, expected));
        EXPECT_TRUE(same_bits(yc, expected_c));
      }
}

TEST(Dropout, ZeroAndOneProbability) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const Tensor x = testing::random_tensor(rng, {3, 5, 5, 7}, DType::f32);
  Tensor y = Tensor::empty(x.shape(), DType::f32);
  dropout_forward(random_params(rng, 0.0), x, y);
  EXPECT_TRUE(same_bits(y, x)) << "p = 0 is the identity";
  drop_connect_forward(random_params(rng, 0.0), x, y);
  EXPECT_TRUE(same_bits(y, x)) << "p = 0 is the identity";
  dropout_forward(random_params(rng, 1.0), x, y);
  EXPECT_TRUE(all_close(y, std::vector<double>(size_t(x.numel()), 0.0), {0, 0})) << "p = 1 drops everything";
  drop_connect_backward(random_params(rng, 1.0), x, y);
  EXPECT_TRUE(all_close(y, std::vector<double>(size_t(x.numel()), 0.0), {0, 0})) << "p = 1 drops everything";
}

// Backward applies the forward's mask (recomputed from seed and offset) to dy: since the op is
// linear, dx = y evaluated at x = dy; and a different offset gives a different mask.
TEST(Dropout, BackwardRecomputesForwardMask) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const DropoutParams params = random_params(rng, 0.4);
  const Tensor x = testing::random_tensor(rng, {2, 9, 9, 11}, DType::f32, 0.5f, 1.5f);  // no zeros
  const Tensor dy = testing::random_tensor(rng, x.shape(), DType::f32, 0.5f, 1.5f);
  Tensor y = Tensor::empty(x.shape(), DType::f32), dx = Tensor::empty(x.shape(), DType::f32);
  dropout_forward(params, x, y);
  dropout_backward(params, dy, dx);
  for (int64_t i = 0; i < x.numel(); ++i) {
    ASSERT_EQ(y.data_as<float>()[i] == 0.0f, dx.data_as<float>()[i] == 0.0f) << "element " << i;
  }
  // Finite differences: dL/dx for L = sum(y * dy) is exactly dx (the op is linear in x).
  const float scale = math::dropout_scale(0.4);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float expected_dx = y.data_as<float>()[i] == 0.0f ? 0.0f : dy.data_as<float>()[i] * scale;
    ASSERT_EQ(dx.data_as<float>()[i], expected_dx) << i;
  }
  DropoutParams next = params;
  next.offset += 1;
  Tensor y_next = Tensor::empty(x.shape(), DType::f32);
  dropout_forward(next, x, y_next);
  EXPECT_FALSE(same_bits(y, y_next)) << "another offset must give another mask";
}

TEST(Dropout, CudaBitIdenticalToCpu) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : {Shape{1, 1, 1, 5}, Shape{3, 7, 7, 3}, Shape{3, 33, 33, 5}, Shape{32, 56, 56, 24}})
      for (double p : {0.0, 0.2, 0.5, 1.0}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " p=" << p);
        const DropoutParams params = random_params(rng, p);
        const Tensor x = testing::random_tensor(rng, shape, dtype, -4, 4);
        Tensor y = Tensor::empty(shape, dtype), yc = Tensor::empty(shape, dtype);
        dropout_forward(params, x, y);
        drop_connect_forward(params, x, yc);
        const Tensor xg = x.to(gpu);
        Tensor yg = Tensor::empty(shape, dtype, gpu), ycg = Tensor::empty(shape, dtype, gpu);
        Tensor dxg = Tensor::empty(shape, dtype, gpu);
        testing::poison(yg);
        testing::poison(ycg);
        testing::poison(dxg);
        dropout_forward(params, xg, yg);
        drop_connect_forward(params, xg, ycg);
        dropout_backward(params, xg, dxg);
        EXPECT_TRUE(same_bits(yg.to(Device::cpu()), y)) << "dropout";
        EXPECT_TRUE(same_bits(ycg.to(Device::cpu()), yc)) << "drop_connect";
        EXPECT_TRUE(same_bits(dxg.to(Device::cpu()), y)) << "dropout backward";
      }
}

TEST(Dropout, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32), y = Tensor::zeros({3, 2}, DType::f32);
  Tensor y_half = Tensor::zeros({2, 3}, DType::f16), ok = Tensor::zeros({2, 3}, DType::f32);
  DropoutParams params;
  EXPECT_THROW(
      {
        try {
          dropout_forward(params, x, y);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("dropout_forward: y has shape [3, 2], expected [2, 3]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(dropout_backward(params, x, y_half), Error);
  EXPECT_THROW(drop_connect_forward(params, x, y), Error);
  params.p = 1.5;
  EXPECT_THROW(dropout_forward(params, x, ok), Error);
  params.p = -0.1;
  EXPECT_THROW(drop_connect_forward(params, x, ok), Error);
  Tensor integers = Tensor::zeros({2, 3}, DType::i32);
  EXPECT_THROW(dropout_forward(DropoutParams{}, integers, integers), Error);
}

}  // namespace
}  // namespace sg
