// Activations: a case table (tests/support/op_harness.h) run on the fast CPU path and CUDA
// against the reference, finite differences on the double reference, PyTorch golden values, and
// bad arguments.
#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "kernels/cpu/activation_ref.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using testing::all_close;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using testing::with_type;

const Activation kAll[] = {Activation::identity, Activation::relu,  Activation::relu6,
                           Activation::sigmoid,  Activation::swish, Activation::mish};
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
// Odd lengths for the vector tails; 70001 past the CPU's parallel threshold (32768) and over many
// CUDA blocks.
const int64_t kLengths[] = {1, 3, 7, 17, 33, 1000, 4099, 70001};

// ---- The case table: every activation, dtype and length, forward and backward ---------------------

OpCase activation_case(Activation kind, DType dtype, int64_t n, bool in_place) {
  OpCase c;
  c.op = "activation " + std::string(activation_name(kind)) + (in_place ? " in place" : "");
  c.description = testing::describe(dtype, {n});
  c.outputs = {{"y"}, {"dx"}};
  c.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, {n}, dtype, -10, 10), testing::random_tensor(rng, {n}, dtype)});
  };
  // Same formula and storage: results agree to the last rounding of the storage type (GPU
  // transcendental functions differ from glibc's by a few ulp, within the f32 measure).
  c.reference = [=](const OpInputs& in) {
    const Tensor &x = in.tensors[0], &dy = in.tensors[1];
    OpOutputs out{testing::empty_like(x), testing::empty_like(x)};
    with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::activation_forward(kind, x.data_as<T>(), out[0].data_as<T>(), n);
      cpu::ref::activation_backward(kind, x.data_as<T>(), dy.data_as<T>(), out[1].data_as<T>(), n);
    });
    return out;
  };
  c.run = [=](const OpInputs& in, OpOutputs& out) {
    const Tensor &x = in.tensors[0], &dy = in.tensors[1];
    if (in_place) {
      out[0].copy_from(x);
      activation_forward(kind, out[0], out[0]);
    } else {
      activation_forward(kind, x, out[0]);
    }
    activation_backward(kind, x, dy, out[1]);
  };
  c.bytes = double(5 * n * dtype_size(dtype));  // forward: x, y; backward: x, dy, dx
  return c;
}

std::vector<OpCase> activation_cases() {
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes)
    for (int64_t n : kLengths) {
      for (Activation kind : kAll) cases.push_back(activation_case(kind, dtype, n, false));
      cases.push_back(activation_case(Activation::swish, dtype, n, true));
    }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Activation", "", activation_cases);

// ---- Gradient mode: the double reference backward against central differences --------------------

std::vector<GradientCase> activation_gradient_cases() {
  std::vector<GradientCase> cases;
  for (Activation kind : kAll) {
    GradientCase c;
    c.op = "activation " + std::string(activation_name(kind));
    c.description = "[64]";
    c.input_names = {"x"};
    c.make_inputs = [](Rng& rng) {
      std::vector<double> x = testing::random_doubles(rng, 64, -8, 8);
      // Keep away from the ReLU kinks, where the derivative is undefined.
      for (double& v : x)
        if (std::fabs(v) < 1e-3 || std::fabs(v - 6) < 1e-3) v += 0.01;
      return std::vector<std::vector<double>>{x};
    };
    c.forward = [kind](const std::vector<std::vector<double>>& in) {
      std::vector<double> y(in[0].size());
      cpu::ref::activation_forward(kind, in[0].data(), y.data(), int64_t(y.size()));
      return y;
    };
    c.backward = [kind](const std::vector<std::vector<double>>& in, const std::vector<double>& dy) {
      std::vector<double> dx(in[0].size());
      cpu::ref::activation_backward(kind, in[0].data(), dy.data(), dx.data(), int64_t(dx.size()));
      return std::vector<std::vector<double>>{dx};
    };
    cases.push_back(std::move(c));
  }
  return cases;
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("Activation", "BackwardMatchesFiniteDifferences", activation_gradient_cases);

// ---- PyTorch golden values and bad arguments ------------------------------------------------------

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
  testing::expect_error_containing([&] { activation_forward(Activation::relu, x, wrong_shape); },
                                   "activation_forward: y has shape [3, 2], expected [2, 3]");
  EXPECT_THROW(activation_forward(Activation::relu, x, wrong_dtype), Error);
  EXPECT_THROW(activation_forward(Activation::relu, integers, integers), Error);
  EXPECT_THROW(activation_backward(Activation::mish, x, wrong_shape, x), Error);
  EXPECT_THROW(parse_activation("gelu"), Error);
  EXPECT_EQ(parse_activation("silu"), Activation::swish);
}

}  // namespace
}  // namespace sg
