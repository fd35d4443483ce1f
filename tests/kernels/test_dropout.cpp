// Dropout and drop-connect: the mask against a direct philox_uniform loop, a case table
// (tests/support/op_harness.h) run bit-exact against the reference on the fast CPU path and CUDA,
// the scale, p = 0 and p = 1, backward = same mask, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/philox.h"
#include "kernels/cpu/dropout_ref.h"
#include "kernels/dropout.h"
#include "kernels/dropout_math.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
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

// ---- The case table: dropout, drop-connect and their backwards against the reference, bit for bit --
// The same float product on every path, and the mask a function of (seed, offset, index) only.

DropoutParams params_of(double p, const OpInputs& inputs) {
  DropoutParams params;
  params.p = p;
  params.seed = inputs.integers.at(0);
  params.offset = inputs.integers.at(1);
  return params;
}

OpCase dropout_case(DType dtype, const Shape& shape, double p, bool cuda_only) {
  OpCase k;
  k.op = "dropout p=" + testing::describe(p);
  k.description = testing::describe(dtype, shape);
  k.outputs = {{.name = "dropout y", .exact = true},
               {.name = "dropout backward dx", .exact = true},
               {.name = "drop_connect y", .exact = true},
               {.name = "drop_connect backward dx", .exact = true}};
  k.cuda_only = cuda_only;
  // Inputs: x, dy; integers: the seed and the offset.
  k.make_inputs = [=](Rng& rng) {
    const DropoutParams params = random_params(rng, p);
    return OpInputs({testing::random_tensor(rng, shape, dtype, -4, 4), testing::random_tensor(rng, shape, dtype)}, {},
                    {params.seed, params.offset});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &x = i.tensors[0], &dy = i.tensors[1];
    const DropoutParams params = params_of(p, i);
    OpOutputs o{testing::empty_like(x), testing::empty_like(x), testing::empty_like(x), testing::empty_like(x)};
    const float scale = math::dropout_scale(p);
    testing::with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::dropout(x.data_as<T>(), o[0].data_as<T>(), x.numel(), float(p), scale, params.seed, params.offset);
      cpu::ref::dropout(dy.data_as<T>(), o[1].data_as<T>(), x.numel(), float(p), scale, params.seed, params.offset);
      cpu::ref::drop_connect(x.data_as<T>(), o[2].data_as<T>(), shape[0], x.numel() / shape[0], float(p), scale,
                             params.seed, params.offset);
      cpu::ref::drop_connect(dy.data_as<T>(), o[3].data_as<T>(), shape[0], x.numel() / shape[0], float(p), scale,
                             params.seed, params.offset);
    });
    return o;
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    const DropoutParams params = params_of(p, i);
    dropout_forward(params, i.tensors[0], o[0]);
    dropout_backward(params, i.tensors[1], o[1]);
    drop_connect_forward(params, i.tensors[0], o[2]);
    drop_connect_backward(params, i.tensors[1], o[3]);
  };
  k.bytes = double(8 * shape.numel() * dtype_size(dtype));
  return k;
}

std::vector<OpCase> dropout_cases() {
  const Shape shapes[] = {{1, 1, 1, 5}, {3, 7, 7, 3}, {1, 17, 17, 24}, {3, 33, 33, 5}};
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes) {
    for (const Shape& shape : shapes)
      for (double p : {0.0, 0.1, 0.2, 0.5, 0.9, 1.0}) cases.push_back(dropout_case(dtype, shape, p, false));
    // Many CUDA blocks.
    for (double p : {0.0, 0.2, 0.5, 1.0}) cases.push_back(dropout_case(dtype, {32, 56, 56, 24}, p, true));
  }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Dropout", "", dropout_cases);

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

TEST(Dropout, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32), y = Tensor::zeros({3, 2}, DType::f32);
  Tensor y_half = Tensor::zeros({2, 3}, DType::f16), ok = Tensor::zeros({2, 3}, DType::f32);
  DropoutParams params;
  testing::expect_error_containing([&] { dropout_forward(params, x, y); },
                                   "dropout_forward: y has shape [3, 2], expected [2, 3]");
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
