// Activations: finite differences on the double reference, fast CPU vs reference, CUDA vs
// reference, PyTorch golden values, and bad arguments.
#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "kernels/cpu/activation_ref.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;

const Activation kAll[] = {Activation::identity, Activation::relu,  Activation::relu6,
                           Activation::sigmoid,  Activation::swish, Activation::mish};
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// Reference output of a tensor, computed in the tensor's own storage type.
Tensor reference_forward(Activation kind, const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::activation_forward(kind, x.data_as<T>(), y.data_as<T>(), x.numel());
  });
  return y;
}

Tensor reference_backward(Activation kind, const Tensor& x, const Tensor& dy) {
  Tensor dx = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::ref::activation_backward(kind, x.data_as<T>(), dy.data_as<T>(), dx.data_as<T>(), x.numel());
  });
  return dx;
}

TEST(Activation, BackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (Activation kind : kAll) {
    SCOPED_TRACE(std::string(activation_name(kind)));
    std::vector<double> x = testing::random_doubles(rng, 64, -8, 8);
    // Keep away from the ReLU kinks, where the derivative is undefined.
    for (double& v : x)
      if (std::fabs(v) < 1e-3 || std::fabs(v - 6) < 1e-3) v += 0.01;
    const std::vector<double> g = testing::random_doubles(rng, x.size());
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(in.size());
      cpu::ref::activation_forward(kind, in.data(), y.data(), int64_t(in.size()));
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
      return s;
    };
    std::vector<double> dx(x.size());
    cpu::ref::activation_backward(kind, x.data(), g.data(), dx.data(), int64_t(x.size()));
    EXPECT_TRUE(testing::gradient_matches(loss, x, dx));
  }
}

TEST(Activation, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (int64_t n : {1, 3, 7, 17, 33, 1000, 4099}) {
      for (Activation kind : kAll) {
        SCOPED_TRACE(::testing::Message() << activation_name(kind) << " " << dtype_name(dtype) << " n=" << n);
        Tensor x = testing::random_tensor(rng, {n}, dtype, -10, 10);
        Tensor dy = testing::random_tensor(rng, {n}, dtype);
        Tensor y = Tensor::empty(x.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
        testing::poison(y);
        testing::poison(dx);
        activation_forward(kind, x, y);
        activation_backward(kind, x, dy, dx);
        // Same formula and storage: results agree to the last rounding of the storage type.
        EXPECT_TRUE(all_close(y, reference_forward(kind, x), testing::tolerance_for(dtype)));
        EXPECT_TRUE(all_close(dx, reference_backward(kind, x, dy), testing::tolerance_for(dtype)));
      }
    }
}

TEST(Activation, InPlaceForward) {
  Rng rng;
  Tensor x = testing::random_tensor(rng, {3, 7, 7, 5});
  Tensor expected = reference_forward(Activation::swish, x);
  activation_forward(Activation::swish, x, x);
  EXPECT_TRUE(all_close(x, expected, {1e-6, 1e-6}));
}

TEST(Activation, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  const Device gpu = Device::cuda(0);
  for (DType dtype : kFloatTypes)
    for (int64_t n : {1, 3, 7, 17, 33, 4099, 1 << 20}) {
      for (Activation kind : kAll) {
        SCOPED_TRACE(::testing::Message() << activation_name(kind) << " " << dtype_name(dtype) << " n=" << n);
        Tensor x = testing::random_tensor(rng, {n}, dtype, -10, 10);
        Tensor dy = testing::random_tensor(rng, {n}, dtype);
        Tensor xg = x.to(gpu), dyg = dy.to(gpu);
        Tensor y = Tensor::empty(x.shape(), dtype, gpu), dx = Tensor::empty(x.shape(), dtype, gpu);
        testing::poison(y);
        testing::poison(dx);
        activation_forward(kind, xg, y);
        activation_backward(kind, xg, dyg, dx);
        // GPU transcendental functions differ from glibc's by a few ulp.
        const testing::Tolerance tol = dtype == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : testing::tolerance_for(dtype);
        EXPECT_TRUE(all_close(y, reference_forward(kind, x), tol));
        EXPECT_TRUE(all_close(dx, reference_backward(kind, x, dy), tol));
      }
    }
}

TEST(Activation, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("activation");
  for (DType dtype : kFloatTypes)
    for (Activation kind : {Activation::relu, Activation::relu6, Activation::sigmoid, Activation::swish, Activation::mish}) {
      const std::string name(activation_name(kind));
      SCOPED_TRACE(name + " " + std::string(dtype_name(dtype)));
      Tensor x = golden.tensor("x", dtype), dy = golden.tensor("dy", dtype);
      Tensor y = Tensor::empty(x.shape(), dtype), dx = Tensor::empty(x.shape(), dtype);
      activation_forward(kind, x, y);
      activation_backward(kind, x, dy, dx);
      // f16/bf16 inputs were rounded from the golden's float inputs: compare loosely there.
      const testing::Tolerance tol = dtype == DType::f32 ? testing::Tolerance{1e-6, 1e-5}
                                                         : testing::Tolerance{0.05, 0.02};
      EXPECT_TRUE(all_close(y, golden.doubles(name + "/y"), tol));
      EXPECT_TRUE(all_close(dx, golden.doubles(name + "/dx"), tol));
    }
}

TEST(Activation, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::f32);
  Tensor wrong_shape = Tensor::zeros({3, 2}, DType::f32);
  Tensor wrong_dtype = Tensor::zeros({2, 3}, DType::f16);
  Tensor integers = Tensor::zeros({2, 3}, DType::i32);
  EXPECT_THROW(
      {
        try {
          activation_forward(Activation::relu, x, wrong_shape);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("activation_forward: y has shape [3, 2], expected [2, 3]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(activation_forward(Activation::relu, x, wrong_dtype), Error);
  EXPECT_THROW(activation_forward(Activation::relu, integers, integers), Error);
  EXPECT_THROW(activation_backward(Activation::mish, x, wrong_shape, x), Error);
  EXPECT_THROW(parse_activation("gelu"), Error);
  EXPECT_EQ(parse_activation("silu"), Activation::swish);
}

}  // namespace
}  // namespace sg
