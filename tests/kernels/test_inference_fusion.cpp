// kernels/inference_fusion.h: conv + eval-mode batch norm (+ activation) folded into one
// convolution with a bias, against the unfused double reference (conv, then BN with the running
// statistics, then the activation), for dense, pointwise and depthwise convolutions; the SE gate
// folded into the projection; on the CPU and on CUDA; and bad input. Not an op-harness table
// (tests/support/op_harness.md): the fused outputs carry a rounding in the storage type inside the
// op (the folded weights, the gated activations, CUDA's convolution before its bias), which the
// harness's one error measure per dtype does not describe; these keep their own tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/batch_norm_ref.h"
#include "kernels/cpu/conv2d_ref.h"
#include "kernels/inference_fusion.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using math::Activation;
using testing::expect_error_containing;
using testing::Rng;
using testing::Tolerance;

struct FusionCase {
  int64_t kernel, stride, groups_is_depthwise, c_in, c_out;
  Activation act;
};

// The folded weights carry one more rounding (w * scale) in the storage type than the unfused
// path: f32 stays tight; f16/bf16 get the storage type's resolution times the sum's length.
Tolerance fused_tolerance(DType dtype) {
  if (dtype == DType::f32) return {1e-4, 1e-4};
  if (dtype == DType::f16) return {2e-2, 1e-2};
  return {1e-1, 4e-2};
}

void check_case(const FusionCase& fc, DType dtype, bool with_conv_bias, Rng& rng, Device device) {
  const int64_t n = 2, h = rng.integer(fc.kernel, 12), w = rng.integer(fc.kernel, 12);
  const int64_t groups = fc.groups_is_depthwise ? fc.c_in : 1;
  const int64_t c_out = fc.groups_is_depthwise ? fc.c_in : fc.c_out;
  const Conv2dParams p = make_conv2d_params(fc.kernel, fc.kernel, fc.stride, Padding::tf_same, h, w, groups);
  const Shape xs{n, h, w, fc.c_in}, ws{c_out, fc.kernel, fc.kernel, fc.c_in / groups};
  const Conv2dShape s = conv2d_shape("test", p, xs, ws);
  const Shape ys{n, s.out_h, s.out_w, c_out};
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << to_string(p) << " x " << xs.str() << " w "
                                    << ws.str() << " " << activation_name(fc.act)
                                    << (with_conv_bias ? " conv bias" : "") << " on " << device.str());
  const Tensor x = testing::random_tensor(rng, xs, dtype), wt = testing::random_tensor(rng, ws, dtype);
  const Tensor conv_bias = testing::random_tensor(rng, {c_out}, dtype);
  const Tensor gamma = testing::random_tensor(rng, {c_out}, DType::f32, 0.5f, 1.5f);
  const Tensor beta = testing::random_tensor(rng, {c_out}, DType::f32, -0.5f, 0.5f);
  const Tensor mean = testing::random_tensor(rng, {c_out}, DType::f32, -0.3f, 0.3f);
  const Tensor var = testing::random_tensor(rng, {c_out}, DType::f32, 0.3f, 2.0f);
  const double eps = 1e-3;

  Tensor w_folded = testing::empty_on(ws, dtype, device), bias_folded = testing::empty_on({c_out}, DType::f32, device);
  Tensor y = testing::empty_on(ys, dtype, device);
  const Tensor conv_bias_d = conv_bias.to(device);
  fold_batch_norm_into_conv(wt.to(device), with_conv_bias ? &conv_bias_d : nullptr, gamma.to(device), beta.to(device),
                            mean.to(device), var.to(device), eps, w_folded, bias_folded);
  conv2d_bias_activation_forward(p, x.to(device), w_folded, &bias_folded, fc.act, y);

  // Unfused, in double: conv (+ bias), BN with the running statistics, activation.
  const std::vector<double> xd = testing::to_doubles(x), wd = testing::to_doubles(wt),
                            bd = testing::to_doubles(conv_bias), gd = testing::to_doubles(gamma),
                            betad = testing::to_doubles(beta), md = testing::to_doubles(mean),
                            vd = testing::to_doubles(var);
  std::vector<double> conv(size_t(ys.numel())), expected(conv.size());
  cpu::ref::conv2d_forward(p, s, xd.data(), wd.data(), with_conv_bias ? bd.data() : nullptr, conv.data());
  cpu::ref::batch_norm_forward_eval(conv.data(), gd.data(), betad.data(), md.data(), vd.data(), expected.data(),
                                    ys.numel() / c_out, c_out, eps, fc.act);
  EXPECT_TRUE(testing::all_close(y.to(Device::cpu()), expected, fused_tolerance(dtype)));
}

void expect_folded_conv_matches_conv_then_eval_batch_norm(Device device) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const FusionCase cases[] = {
      {3, 2, 0, 3, 8, Activation::swish},        // the stem
      {1, 1, 0, 12, 20, Activation::swish},      // expand / head
      {1, 1, 0, 20, 7, Activation::identity},    // project
      {3, 1, 1, 17, 17, Activation::swish},      // depthwise 3x3
      {5, 2, 1, 24, 24, Activation::relu6},      // depthwise 5x5 / 2
      {3, 1, 0, 6, 5, Activation::mish},         // a dense 3x3 elsewhere
  };
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const FusionCase& fc : cases)
      for (bool with_conv_bias : {false, true}) check_case(fc, dtype, with_conv_bias, rng, device);
}

TEST(InferenceFusion, FoldedConvMatchesConvThenEvalBatchNorm) { expect_folded_conv_matches_conv_then_eval_batch_norm(Device::cpu()); }

// CUDA runs the fused convolution as the convolution, rounded to the storage type, then the bias and
// activation: one rounding more than the CPU's single loop, well inside the tolerance.
TEST(InferenceFusion, CudaFoldedConvMatchesConvThenEvalBatchNorm) {
  SG_REQUIRE_CUDA();
  expect_folded_conv_matches_conv_then_eval_batch_norm(Device::cuda(0));
}

TEST(InferenceFusion, NoBiasAppliesTheActivationOnly) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const Conv2dParams p = make_conv2d_params(3, 3, 1, Padding::symmetric, 6, 5, 4);
  const Tensor x = testing::random_tensor(rng, {1, 6, 5, 4}), w = testing::random_tensor(rng, {4, 3, 3, 1});
  Tensor plain = Tensor::empty({1, 6, 5, 4}, DType::f32), fused = Tensor::empty({1, 6, 5, 4}, DType::f32);
  conv2d_forward(p, x, w, nullptr, plain);
  conv2d_bias_activation_forward(p, x, w, nullptr, Activation::relu, fused);
  std::vector<double> expected = testing::to_doubles(plain);
  for (double& v : expected) v = v > 0 ? v : 0.0;
  EXPECT_TRUE(testing::all_close(fused, expected, {1e-6, 1e-6}));
}

// The SE gate folded into the 1x1 projection: against gating x in double, then the reference
// convolution, bias and activation.
void expect_gated_pointwise_matches_scale_then_conv(Device device) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (Activation act : {Activation::identity, Activation::swish})
      for (bool with_bias : {false, true}) {
        // Small images take the gated-copy path, large ones (>= 256 pixels) the per-image weights.
        const bool large = with_bias != (act == Activation::swish);  // both paths for every dtype
        const int64_t n = rng.integer(1, 3), h = large ? rng.integer(16, 20) : rng.integer(1, 9),
                      w = large ? rng.integer(16, 20) : rng.integer(1, 9), c_in = rng.integer(1, 40),
                      c_out = rng.integer(1, 24);
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << activation_name(act) << " n=" << n
                                          << " h=" << h << " w=" << w << " cin=" << c_in << " cout=" << c_out
                                          << (with_bias ? " bias" : "") << " on " << device.str());
        const Tensor x = testing::random_tensor(rng, {n, h, w, c_in}, dtype);
        const Tensor gate = testing::random_tensor(rng, {n, c_in}, dtype, 0.0f, 1.0f);
        const Tensor wt = testing::random_tensor(rng, {c_out, 1, 1, c_in}, dtype);
        const Tensor bias = testing::random_tensor(rng, {c_out}, DType::f32);
        Tensor y = testing::empty_on({n, h, w, c_out}, dtype, device);
        const Tensor bias_d = bias.to(device);
        pointwise_gated_forward(x.to(device), gate.to(device), wt.to(device), with_bias ? &bias_d : nullptr, act, y);

        std::vector<double> xd = testing::to_doubles(x);
        const std::vector<double> gd = testing::to_doubles(gate), wd = testing::to_doubles(wt),
                                  bd = testing::to_doubles(bias);
        for (size_t i = 0; i < xd.size(); ++i) xd[i] *= gd[(i / size_t(h * w * c_in)) * size_t(c_in) + i % size_t(c_in)];
        const Conv2dParams p = make_conv2d_params(1, 1, 1, Padding::symmetric, h, w);
        const Conv2dShape s = conv2d_shape("test", p, Shape{n, h, w, c_in}, Shape{c_out, 1, 1, c_in});
        std::vector<double> expected(size_t(n * h * w * c_out));
        cpu::ref::conv2d_forward(p, s, xd.data(), wd.data(), static_cast<const double*>(nullptr), expected.data());
        for (size_t i = 0; i < expected.size(); ++i)
          expected[i] = math::activation(act, expected[i] + (with_bias ? bd[i % size_t(c_out)] : 0.0));
        EXPECT_TRUE(testing::all_close(y.to(Device::cpu()), expected, fused_tolerance(dtype)));
      }
}

TEST(InferenceFusion, GatedPointwiseMatchesScaleThenConv) { expect_gated_pointwise_matches_scale_then_conv(Device::cpu()); }

// CUDA gates x into scratch (rounded to the storage type), then runs the fused convolution.
TEST(InferenceFusion, CudaGatedPointwiseMatchesScaleThenConv) {
  SG_REQUIRE_CUDA();
  expect_gated_pointwise_matches_scale_then_conv(Device::cuda(0));
}


TEST(InferenceFusion, BadInputNamesTheItem) {
  const Tensor w = Tensor::zeros({4, 1, 1, 3}, DType::f32), c4 = Tensor::zeros({4}, DType::f32);
  const Tensor c5 = Tensor::zeros({5}, DType::f32), ones = Tensor::from_floats({1, 1, 1, 1}, {4});
  Tensor wf = Tensor::empty({4, 1, 1, 3}, DType::f32), bf = Tensor::empty({4}, DType::f32);
  expect_error_containing([&] { fold_batch_norm_into_conv(w, nullptr, c4, c4, c4, c5, 1e-5, wf, bf); }, "running_var");
  expect_error_containing([&] { fold_batch_norm_into_conv(w, nullptr, c5, c4, c4, ones, 1e-5, wf, bf); }, "gamma");
  Tensor wf16 = Tensor::empty({4, 1, 1, 3}, DType::f16);
  expect_error_containing([&] { fold_batch_norm_into_conv(w, nullptr, c4, c4, c4, ones, 1e-5, wf16, bf); }, "w_folded");
  // running_var + eps must be positive (it is divided by its square root).
  const Tensor negative = Tensor::from_floats({1, -1, 1, 1}, {4});
  expect_error_containing([&] { fold_batch_norm_into_conv(w, nullptr, c4, c4, c4, negative, 0.0, wf, bf); },
                      "running_var[1]");

  const Conv2dParams p = make_conv2d_params(1, 1, 1, Padding::symmetric, 2, 2);
  const Tensor x = Tensor::zeros({1, 2, 2, 3}, DType::f32);
  Tensor y = Tensor::empty({1, 2, 2, 4}, DType::f32);
  const Tensor bias16 = Tensor::zeros({4}, DType::f16);
  expect_error_containing([&] { conv2d_bias_activation_forward(p, x, w, &bias16, Activation::swish, y); }, "bias");
  expect_error_containing([&] { conv2d_bias_activation_forward(p, x, w, &c5, Activation::swish, y); }, "bias");
  Tensor y_bad = Tensor::empty({1, 2, 2, 5}, DType::f32);
  expect_error_containing([&] { conv2d_bias_activation_forward(p, x, w, &c4, Activation::swish, y_bad); }, "y");

  const Tensor gate_bad = Tensor::zeros({1, 4}, DType::f32), w3 = Tensor::zeros({4, 3, 3, 3}, DType::f32);
  expect_error_containing([&] { pointwise_gated_forward(x, gate_bad, w, nullptr, Activation::identity, y); }, "gate");
  expect_error_containing([&] { pointwise_gated_forward(x, Tensor::zeros({1, 3}, DType::f32), w3, nullptr,
                                                    Activation::identity, y); }, "w has shape");
}

}  // namespace
}  // namespace sg
