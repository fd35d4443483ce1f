// NaN goes through every activation path, as in PyTorch, so that the non-finite checks downstream
// (the loss, nn::NonFiniteProbe, the gradient guards) see it: ReLU and ReLU6 used to turn NaN into
// 0 (kernels/scalar_math.h), which let a NaN weight or input vanish inside one layer. Every path
// that applies an activation is covered, in f32, f16 and bf16: the activation op (forward and
// backward), bias + activation, batch norm + activation (training and evaluation), the inference
// fusions (dense, pointwise and depthwise convolution + bias + activation, the gated pointwise
// convolution); on the CPU with every ISA variant of the fast loops, and on CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/bias_activation.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/isa.h"
#include "kernels/inference_fusion.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::Rng;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const Activation kAll[] = {Activation::identity, Activation::relu,  Activation::relu6,
                           Activation::sigmoid,  Activation::swish, Activation::mish};
const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

// Values across every branch of ReLU6 (below 0, between, above 6), with NaN at `nan_at`.
Tensor values_with_nan(Rng& rng, const Shape& shape, DType dtype, const std::set<int64_t>& nan_at) {
  std::vector<float> v = testing::random_tensor(rng, shape, DType::f32, -3.0f, 9.0f).to_floats();
  for (int64_t i : nan_at) v.at(size_t(i)) = kNaN;
  return Tensor::from_floats(v, shape, dtype);
}

// Whether the NaNs of an [M, C] result are exactly `elements` (flat indices) plus every row of
// `columns`.
::testing::AssertionResult nan_exactly_at(const std::vector<float>& y, int64_t C, const std::set<int64_t>& elements,
                                          const std::set<int64_t>& columns = {}) {
  for (size_t i = 0; i < y.size(); ++i) {
    const bool want = elements.count(int64_t(i)) > 0 || columns.count(int64_t(i) % C) > 0;
    if (std::isnan(y[i]) != want)
      return ::testing::AssertionFailure() << "element " << i << " (column " << int64_t(i) % C << ") is " << y[i]
                                           << ", expected " << (want ? "NaN" : "a number");
  }
  return ::testing::AssertionSuccess();
}

// Every op below on `device`; inputs made on the CPU and copied there, results read back.
void expect_nan_propagates(Device device, Rng& rng) {
  const Shape shape{2, 5, 7, 37};  // 37 channels: a vector body and a tail in every fast loop
  const int64_t C = shape[-1], numel = shape.numel();
  const std::set<int64_t> nan_at{0, 5, 17, 40, numel / 2, numel - 1};
  for (DType dtype : kFloatTypes)
    for (Activation act : kAll) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << activation_name(act));
      const Tensor x = values_with_nan(rng, shape, dtype, nan_at).to(device);
      Tensor y = Tensor::empty(shape, dtype, device);

      activation_forward(act, x, y);
      EXPECT_TRUE(nan_exactly_at(y.to_floats(), C, nan_at)) << "activation_forward";

      // Backward at NaN: ReLU, ReLU6 (and identity) pass dy on, as PyTorch's threshold_backward and
      // hardtanh_backward do; the smooth activations' derivatives are NaN there.
      const Tensor dy = testing::random_tensor(rng, shape, dtype, 0.5f, 1.5f).to(device);
      Tensor dx = Tensor::empty(shape, dtype, device);
      activation_backward(act, x, dy, dx);
      const std::vector<float> dxv = dx.to_floats(), dyv = dy.to_floats();
      const bool passes = act == Activation::identity || act == Activation::relu || act == Activation::relu6;
      for (int64_t i : nan_at) {
        if (passes)
          EXPECT_EQ(dxv[size_t(i)], dyv[size_t(i)]) << "activation_backward at " << i;
        else
          EXPECT_TRUE(std::isnan(dxv[size_t(i)])) << "activation_backward at " << i << ": " << dxv[size_t(i)];
      }

      // Bias + activation: NaN in x, and a NaN bias for column 3.
      std::vector<float> bias_values = testing::random_tensor(rng, {C}, DType::f32).to_floats();
      bias_values[3] = kNaN;
      const Tensor bias = Tensor::from_floats(bias_values, {C}).to(device);
      bias_activation_forward(act, x, bias, y);
      EXPECT_TRUE(nan_exactly_at(y.to_floats(), C, nan_at, {3})) << "bias_activation_forward";

      // Batch norm + activation. Training: one NaN makes its channel's statistics NaN, so the
      // whole channel; x without other NaNs so that only that channel is.
      const Tensor gamma = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 1.5f).to(device);
      const Tensor beta = testing::random_tensor(rng, {C}, DType::f32, -0.5f, 0.5f).to(device);
      Tensor running_mean = Tensor::zeros({C}, DType::f32, device);
      Tensor running_var = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 2.0f).to(device);
      Tensor saved_mean = Tensor::empty({C}, DType::f32, device), saved_invstd = Tensor::empty({C}, DType::f32, device);
      BatchNormParams p;
      p.activation = act;
      const Tensor x_one_nan = values_with_nan(rng, shape, dtype, {C + 11}).to(device);
      batch_norm_forward_train(p, x_one_nan, gamma, beta, running_mean, running_var, y, saved_mean, saved_invstd);
      EXPECT_TRUE(nan_exactly_at(y.to_floats(), C, {}, {11})) << "batch_norm_forward_train";
      EXPECT_TRUE(nan_exactly_at(running_mean.to_floats(), C, {11})) << "running_mean";
      // Evaluation: element-wise, with finite statistics.
      const Tensor eval_mean = testing::random_tensor(rng, {C}, DType::f32, -0.2f, 0.2f).to(device);
      const Tensor eval_var = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 2.0f).to(device);
      batch_norm_forward_eval(p, x, gamma, beta, eval_mean, eval_var, y);
      EXPECT_TRUE(nan_exactly_at(y.to_floats(), C, nan_at)) << "batch_norm_forward_eval";

      // Inference fusions: dense 3x3, pointwise and depthwise convolutions + bias + activation,
      // and the gated pointwise convolution; a NaN bias makes its output channel NaN.
      const Tensor xf = testing::random_tensor(rng, shape, dtype).to(device);
      for (const int64_t groups : {int64_t(1), C}) {
        for (const int64_t kernel : {int64_t(1), int64_t(3)}) {
          if (groups == C && kernel == 1) continue;
          SCOPED_TRACE(::testing::Message() << kernel << "x" << kernel << (groups == 1 ? " dense" : " depthwise"));
          const Conv2dParams cp = make_conv2d_params(kernel, kernel, 1, Padding::symmetric, shape[1], shape[2], groups);
          const Shape ws{C, kernel, kernel, C / groups};
          const Conv2dShape cs = conv2d_shape("test", cp, shape, ws);
          const Tensor w = testing::random_tensor(rng, ws, dtype).to(device);
          Tensor yc = Tensor::empty({cs.n, cs.out_h, cs.out_w, cs.c_out}, dtype, device);
          conv2d_bias_activation_forward(cp, xf, w, &bias, act, yc);
          EXPECT_TRUE(nan_exactly_at(yc.to_floats(), C, {}, {3})) << "conv2d_bias_activation_forward";
        }
      }
      const Tensor gate = testing::random_tensor(rng, {shape[0], C}, dtype, 0.0f, 1.0f).to(device);
      const Tensor w1 = testing::random_tensor(rng, {C, 1, 1, C}, dtype).to(device);
      pointwise_gated_forward(xf, gate, w1, &bias, act, y);
      EXPECT_TRUE(nan_exactly_at(y.to_floats(), C, {}, {3})) << "pointwise_gated_forward";
    }
}

TEST(ActivationNaN, PropagatesThroughEveryCpuPath) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (cpu::Isa isa : {cpu::Isa::baseline, cpu::Isa::avx2, cpu::Isa::avx512}) {
    if (!cpu::isa_supported(isa)) continue;
    SCOPED_TRACE(cpu::isa_name(isa));
    const cpu::Isa previous = cpu::set_isa_for_testing(isa);
    expect_nan_propagates(Device::cpu(), rng);
    cpu::set_isa_for_testing(previous);
  }
}

TEST(ActivationNaN, PropagatesThroughEveryCudaPath) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  expect_nan_propagates(Device::cuda(0), rng);
}

}  // namespace
}  // namespace sg
