// Fused bias + activation: a case table (tests/support/op_harness.h) run on the fast CPU path
// and CUDA against the reference, finite differences on the double reference, agreement with the
// separate activation op, in place, PyTorch golden values, bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/activation.h"
#include "kernels/bias_activation.h"
#include "kernels/cpu/bias_activation_ref.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using testing::Tolerance;
using Doubles = std::vector<std::vector<double>>;

const Activation kAll[] = {Activation::identity, Activation::relu,  Activation::relu6,
                           Activation::sigmoid,  Activation::swish, Activation::mish};
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

struct Result {
  Tensor y, dx, dbias;
};

Result reference(Activation act, const Tensor& x, const Tensor& bias, const Tensor& dy) {
  const int64_t C = x.dim(-1), M = x.numel() / C;
  Result r{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(x.shape(), x.dtype()), Tensor::empty({C}, DType::f32)};
  testing::with_type(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::bias_activation_forward(act, x.data_as<T>(), bias.data_as<float>(), r.y.data_as<T>(), M, C);
    cpu::ref::bias_activation_backward(act, x.data_as<T>(), bias.data_as<float>(), dy.data_as<T>(), r.dx.data_as<T>(),
                                       r.dbias.data_as<float>(), M, C);
  });
  return r;
}

// ---- The case table: x [..., C] in every dtype, an f32 bias [C] ------------------------------------

OpCase bias_activation_case(Activation act, DType dtype, const Shape& shape, bool cuda_only) {
  const int64_t C = shape[-1], M = shape.numel() / C;
  OpCase k;
  k.op = "bias_activation " + std::string(activation_name(act));
  k.description = testing::describe(dtype, shape);
  // dbias: an f32 sum of M terms (against the reference's double sum).
  k.outputs = {{"y"}, {"dx"}, {.name = "dbias", .summed_terms = double(M)}};
  k.cuda_only = cuda_only;
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, shape, dtype, -8, 8),
                     testing::random_tensor(rng, {C}, DType::f32, -1, 1), testing::random_tensor(rng, shape, dtype)});
  };
  k.reference = [=](const OpInputs& i) {
    Result r = reference(act, i.tensors[0], i.tensors[1], i.tensors[2]);
    return OpOutputs{r.y, r.dx, r.dbias};
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    bias_activation_forward(act, i.tensors[0], i.tensors[1], o[0]);
    bias_activation_backward(act, i.tensors[0], i.tensors[1], i.tensors[2], o[1], o[2]);
  };
  k.bytes = double(5 * shape.numel() * dtype_size(dtype) + 3 * C * 4);
  return k;
}

std::vector<OpCase> bias_activation_cases() {
  const Shape shapes[] = {{1, 1, 1, 5}, {3, 7, 7, 3}, {1, 17, 17, 24}, {3, 33, 33, 5}, {2, 13}, {3, 1000}, {7}};
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes)
    for (Activation act : kAll) {
      for (const Shape& shape : shapes) cases.push_back(bias_activation_case(act, dtype, shape, false));
      // Many CUDA blocks per channel column.
      cases.push_back(bias_activation_case(act, dtype, {32, 28, 28, 96}, true));
    }
  return cases;
}
[[maybe_unused]] const bool kRegistered =
    testing::register_op_tests("BiasActivation", "", bias_activation_cases, {.every_cpu_isa = true});

// ---- Gradient mode ----------------------------------------------------------------------------------

std::vector<GradientCase> bias_activation_gradient_cases() {
  const int64_t M = 6, C = 5;
  std::vector<GradientCase> cases;
  for (Activation act : kAll) {
    GradientCase k;
    k.op = "bias_activation " + std::string(activation_name(act));
    k.description = "x [6, 5], bias [5]";
    k.input_names = {"x", "bias"};
    k.make_inputs = [=](Rng& rng) {
      Doubles in{testing::random_doubles(rng, size_t(M * C), -4, 4), testing::random_doubles(rng, size_t(C), -4, 4)};
      // Away from the ReLU kinks, where the derivative is undefined.
      for (size_t i = 0; i < in[0].size(); ++i) {
        const double z = in[0][i] + in[1][i % size_t(C)];
        if (std::fabs(z) < 1e-3 || std::fabs(z - 6) < 1e-3) in[0][i] += 0.01;
      }
      return in;
    };
    k.forward = [=](const Doubles& in) {
      std::vector<double> y(size_t(M * C));
      cpu::ref::bias_activation_forward(act, in[0].data(), in[1].data(), y.data(), M, C);
      return y;
    };
    k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
      Doubles g{std::vector<double>(in[0].size()), std::vector<double>(in[1].size())};
      cpu::ref::bias_activation_backward(act, in[0].data(), in[1].data(), dy.data(), g[0].data(), g[1].data(), M, C);
      return g;
    };
    cases.push_back(std::move(k));
  }
  return cases;
}
[[maybe_unused]] const bool kGradientsRegistered = testing::register_gradient_tests(
    "BiasActivation", "BackwardMatchesFiniteDifferences", bias_activation_gradient_cases);

// ---- Checks of their own -----------------------------------------------------------------------------

// With a zero bias the fused op is exactly the activation op.
TEST(BiasActivation, ZeroBiasEqualsActivation) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const Tensor x = testing::random_tensor(rng, {2, 5, 5, 7}, DType::f32, -8, 8);
  const Tensor bias = Tensor::zeros({7}, DType::f32);
  Tensor fused = Tensor::empty(x.shape(), DType::f32), plain = Tensor::empty(x.shape(), DType::f32);
  bias_activation_forward(Activation::mish, x, bias, fused);
  activation_forward(Activation::mish, x, plain);
  // Same formula; the two loops may use the scalar or the SIMD libm, a few ulp apart.
  EXPECT_TRUE(all_close(fused, plain, {1e-7, 1e-6}));
}

TEST(BiasActivation, InPlace) {
  Rng rng;
  SG_TRACE_SEED(rng);
  Tensor x = testing::random_tensor(rng, {3, 4, 4, 6}, DType::f16, -4, 4);
  const Tensor bias = testing::random_tensor(rng, {6}, DType::f32);
  Tensor dy = testing::random_tensor(rng, x.shape(), DType::f16);
  const Result expected = reference(Activation::swish, x, bias, dy);
  Tensor dbias = Tensor::empty({6}, DType::f32);
  bias_activation_backward(Activation::swish, x, bias, dy, dy, dbias);  // dx aliases dy
  bias_activation_forward(Activation::swish, x, bias, x);               // y aliases x
  EXPECT_TRUE(all_close(x, expected.y, testing::tolerance_for(DType::f16)));
  EXPECT_TRUE(all_close(dy, expected.dx, testing::tolerance_for(DType::f16)));
}

TEST(BiasActivation, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("bias_activation");
  const Tensor bias = golden.tensor("bias");  // f32 always (a master parameter)
  for (DType dtype : kFloatTypes)
    for (Activation kind : {Activation::relu, Activation::relu6, Activation::sigmoid, Activation::swish, Activation::mish}) {
      const std::string name(activation_name(kind));
      SCOPED_TRACE(name + " " + std::string(dtype_name(dtype)));
      const Tensor x = golden.tensor("x", dtype), dy = golden.tensor("dy", dtype);
      Tensor y = Tensor::empty(x.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
      Tensor dbias = Tensor::empty(bias.shape(), DType::f32);
      bias_activation_forward(kind, x, bias, y);
      bias_activation_backward(kind, x, bias, dy, dx, dbias);
      // f16/bf16: the inputs themselves were rounded, so compare at the storage precision; dbias
      // sums 105 rows of such values.
      const Tolerance tol = dtype == DType::f32 ? Tolerance{1e-5, 1e-5} : Tolerance{0.06, 0.02};
      const Tolerance sum_tol = dtype == DType::f32 ? Tolerance{1e-4, 1e-5} : Tolerance{0.5, 0.02};
      EXPECT_TRUE(all_close(y, golden.doubles(name + "/y"), tol));
      EXPECT_TRUE(all_close(dx, golden.doubles(name + "/dx"), tol));
      EXPECT_TRUE(all_close(dbias, golden.doubles(name + "/dbias"), sum_tol));
    }
}

TEST(BiasActivation, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3, 4}, DType::f32), y = Tensor::zeros({2, 3, 4}, DType::f32);
  Tensor bias = Tensor::zeros({4}, DType::f32), wrong_bias = Tensor::zeros({3}, DType::f32);
  Tensor half_bias = Tensor::zeros({4}, DType::f16), y_half = Tensor::zeros({2, 3, 4}, DType::f16);
  Tensor dbias = Tensor::zeros({4}, DType::f32);
  testing::expect_error_containing([&] { bias_activation_forward(Activation::relu, x, wrong_bias, y); },
                                   "bias_activation_forward: bias has shape [3], expected [4]");
  EXPECT_THROW(bias_activation_forward(Activation::relu, x, half_bias, y), Error);
  EXPECT_THROW(bias_activation_forward(Activation::relu, x, bias, y_half), Error);
  EXPECT_THROW(bias_activation_backward(Activation::relu, x, bias, y, y, wrong_bias), Error);
  EXPECT_THROW(bias_activation_backward(Activation::relu, x, bias, y_half, y, dbias), Error);
}

}  // namespace
}  // namespace sg
