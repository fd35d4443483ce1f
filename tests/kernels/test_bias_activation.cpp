// Fused bias + activation: finite differences on the double reference, fast CPU vs
// reference, CUDA vs reference, agreement with the separate activation op, bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/activation.h"
#include "kernels/bias_activation.h"
#include "kernels/cpu/bias_activation_ref.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;
using testing::Tolerance;

const Activation kAll[] = {Activation::identity, Activation::relu,  Activation::relu6,
                           Activation::sigmoid,  Activation::swish, Activation::mish};
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

struct Result {
  Tensor y, dx, dbias;
};

Result reference(Activation act, const Tensor& x, const Tensor& bias, const Tensor& dy) {
  const int64_t C = x.dim(-1), M = x.numel() / C;
  Result r{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(x.shape(), x.dtype()), Tensor::empty({C}, DType::f32)};
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::bias_activation_forward(act, x.data_as<T>(), bias.data_as<float>(), r.y.data_as<T>(), M, C);
    cpu::ref::bias_activation_backward(act, x.data_as<T>(), bias.data_as<float>(), dy.data_as<T>(), r.dx.data_as<T>(),
                                       r.dbias.data_as<float>(), M, C);
  });
  return r;
}

Result run_op(Activation act, const Tensor& x, const Tensor& bias, const Tensor& dy, Device device) {
  const int64_t C = x.dim(-1);
  const Tensor xd = x.to(device), bd = bias.to(device), dyd = dy.to(device);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), device), dx = Tensor::empty(x.shape(), x.dtype(), device),
         dbias = Tensor::empty({C}, DType::f32, device);
  testing::poison(y);
  testing::poison(dx);
  testing::poison(dbias);
  bias_activation_forward(act, xd, bd, y);
  bias_activation_backward(act, xd, bd, dyd, dx, dbias);
  return {y.to(Device::cpu()), dx.to(Device::cpu()), dbias.to(Device::cpu())};
}

void expect_close(const Result& actual, const Result& expected, Tolerance tol, int64_t M) {
  EXPECT_TRUE(all_close(actual.y, expected.y, tol)) << "y";
  EXPECT_TRUE(all_close(actual.dx, expected.dx, tol)) << "dx";
  // dbias: an f32 sum of M terms against a double sum.
  EXPECT_TRUE(all_close(actual.dbias, expected.dbias, {1e-6 * double(M), 1e-4})) << "dbias";
}

TEST(BiasActivation, BackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t M = 6, C = 5;
  for (Activation act : kAll) {
    SCOPED_TRACE(std::string(activation_name(act)));
    // params = x [M, C] ++ bias [C], away from the ReLU kinks.
    std::vector<double> params = testing::random_doubles(rng, size_t(M * C + C), -4, 4);
    for (size_t i = 0; i < size_t(M * C); ++i) {
      const double z = params[i] + params[size_t(M * C) + i % size_t(C)];
      if (std::fabs(z) < 1e-3 || std::fabs(z - 6) < 1e-3) params[i] += 0.01;
    }
    const std::vector<double> g = testing::random_doubles(rng, size_t(M * C));
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(size_t(M * C));
      cpu::ref::bias_activation_forward(act, in.data(), in.data() + M * C, y.data(), M, C);
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
      return s;
    };
    std::vector<double> grad(params.size());
    cpu::ref::bias_activation_backward(act, params.data(), params.data() + M * C, g.data(), grad.data(),
                                       grad.data() + M * C, M, C);
    EXPECT_TRUE(testing::gradient_matches(loss, params, grad));
  }
}

const Shape kShapes[] = {{1, 1, 1, 5}, {3, 7, 7, 3}, {1, 17, 17, 24}, {3, 33, 33, 5}, {2, 13}, {3, 1000}, {7}};

TEST(BiasActivation, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : kShapes)
      for (Activation act : kAll) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " " << activation_name(act));
        const Tensor x = testing::random_tensor(rng, shape, dtype, -8, 8);
        const Tensor bias = testing::random_tensor(rng, {shape[-1]}, DType::f32, -1, 1);
        const Tensor dy = testing::random_tensor(rng, shape, dtype);
        expect_close(run_op(act, x, bias, dy, Device::cpu()), reference(act, x, bias, dy),
                     testing::tolerance_for(dtype), x.numel() / shape[-1]);
      }
}

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

TEST(BiasActivation, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : {Shape{1, 1, 1, 5}, Shape{3, 7, 7, 3}, Shape{3, 33, 33, 5}, Shape{2, 13},
                               Shape{3, 1000}, Shape{32, 28, 28, 96}, Shape{7}})
      for (Activation act : kAll) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " " << activation_name(act));
        const Tensor x = testing::random_tensor(rng, shape, dtype, -8, 8);
        const Tensor bias = testing::random_tensor(rng, {shape[-1]}, DType::f32, -1, 1);
        const Tensor dy = testing::random_tensor(rng, shape, dtype);
        // GPU transcendental functions differ from glibc's by a few ulp.
        const Tolerance tol = dtype == DType::f32 ? Tolerance{1e-5, 1e-5} : testing::tolerance_for(dtype);
        expect_close(run_op(act, x, bias, dy, Device::cuda(0)), reference(act, x, bias, dy), tol,
                     x.numel() / shape[-1]);
      }
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
  EXPECT_THROW(
      {
        try {
          bias_activation_forward(Activation::relu, x, wrong_bias, y);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("bias_activation_forward: bias has shape [3], expected [4]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(bias_activation_forward(Activation::relu, x, half_bias, y), Error);
  EXPECT_THROW(bias_activation_forward(Activation::relu, x, bias, y_half), Error);
  EXPECT_THROW(bias_activation_backward(Activation::relu, x, bias, y, y, wrong_bias), Error);
  EXPECT_THROW(bias_activation_backward(Activation::relu, x, bias, y_half, y, dbias), Error);
}

}  // namespace
}  // namespace sg
