// Mixed precision in the network (nn/precision.h): B0 forward in f16 and bf16 against f32,
// f32 master weights with cached compute copies, weight gradients accumulated in f32, and the
// probe that finds the first non-finite layer.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cast.h"
#include "kernels/tensor_ops.h"
#include "nn/efficientnet.h"
#include "nn/non_finite_probe.h"
#include "nn/precision.h"
#include "tests/support/testing.h"

namespace sg::nn {
namespace {

// B0 with a small head and no dropout / drop-connect.
EfficientNetConfig small_b0() {
  EfficientNetConfig c = efficientnet_config("b0");
  c.outputs = 10;
  c.dropout = 0.0;
  c.drop_connect = 0.0;
  return c;
}

// ||a - b|| / ||b|| over all elements.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return std::sqrt(diff / ref);
}

Parameter& parameter_named(Module& m, const std::string& name) {
  for (Parameter* p : m.parameters())
    if (p->name == name) return *p;
  throw Error("no parameter " + name);
}

// Elements of every parameter a convolution or linear layer reads: what the f16/bf16 copies hold.
int64_t compute_copy_elements(Module& m) {
  int64_t n = 0;
  for (Parameter* p : m.parameters()) {
    const bool conv_weight = p->name.find("conv") != std::string::npos && p->name.ends_with(".weight");
    const bool classifier = p->name.rfind("classifier.", 0) == 0;
    if (conv_weight || classifier) n += p->value.numel();
  }
  return n;
}

// Tolerances (norm-wise relative error of the logits, B0 at 64x64, batch 2, evaluation-mode BN):
// f16 keeps 11 significant bits (unit roundoff u = 2^-11 = 4.9e-4), bf16 8 (u = 2^-8 = 3.9e-3);
// every layer output and every weight is rounded once, with f32 arithmetic inside each op. B0
// has about 80 such roundings in sequence; their relative errors add like a random walk:
// sqrt(80) u = 4.4e-3 (f16) and 3.5e-2 (bf16). f16 also loses bits on activations below its
// normal range (6e-5), which bf16 (f32's exponent) does not. Measured over 4 seeds: 4.8e-3 to
// 8.3e-3 (f16), 1.2e-2 to 1.7e-2 (bf16). Bounds 3e-2 and 6e-2; a stale, unrounded or wrongly cast
// weight gives errors of order 1.
//
// Evaluation mode, because training-mode BN over this tiny input (the last stage sees 2x2x2 = 8
// values per channel) divides by batch standard deviations that rounding noise moves: there the
// same network measured 2-3e-2 (f16) and 2.3e-1 (bf16), falling to 7e-3 and 7.5e-2 at 128x128
// (32 values per channel). The numerics are the same; the conditioning is not.
constexpr double kLogitTolF16 = 3e-2, kLogitTolBf16 = 6e-2;

void expect_forward_close_to_f32(DType precision, double tol) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet reference(small_b0()), mixed(small_b0());  // same seed: same weights
  // Evaluation mode (see kLogitTolF16), through the modules' own forward: the fused inference
  // path keeps BN-folded weights instead of compute copies (tested in test_inference_fusion_nn).
  reference.set_inference_fusion(false);
  mixed.set_inference_fusion(false);
  mixed.set_precision(precision);
  ASSERT_EQ(mixed.precision(), precision);
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  Context c32, c16;
  const Tensor y32 = reference.forward(c32, x);
  const Tensor y16 = mixed.forward(c16, x);
  ASSERT_EQ(y16.dtype(), DType::f32) << "logits come out f32 for the loss";
  ASSERT_EQ(y16.shape(), y32.shape());
  const std::vector<float> a = y16.to_floats(), b = y32.to_floats();
  for (float v : a) ASSERT_TRUE(std::isfinite(v));
  const double err = relative_error(a, b);
  std::cout << "[          ] B0 logits " << dtype_name(precision) << " vs f32: relative error " << err << "\n";
  EXPECT_LT(err, tol);
  EXPECT_GT(err, 0.0) << "the " << dtype_name(precision) << " forward gave f32's exact logits: was it rounded at all?";
  // Master weights stay f32; the compute copies are the documented set, in the compute dtype.
  for (Parameter* p : mixed.parameters()) {
    ASSERT_EQ(p->value.dtype(), DType::f32) << p->name;
    ASSERT_EQ(p->grad.dtype(), DType::f32) << p->name;
    if (p->compute.value.defined()) {
      EXPECT_EQ(p->compute.value.dtype(), precision) << p->name;
    }
  }
  EXPECT_EQ(compute_copy_bytes(mixed), size_t(compute_copy_elements(mixed)) * 2);
  EXPECT_EQ(compute_copy_bytes(reference), 0u) << "f32 keeps no copies";
  mixed.set_precision(DType::f32);
  EXPECT_EQ(compute_copy_bytes(mixed), 0u) << "switching to f32 frees the copies";
}

TEST(Precision, B0ForwardInF16AgreesWithF32OnCpu) { expect_forward_close_to_f32(DType::f16, kLogitTolF16); }
TEST(Precision, B0ForwardInBf16AgreesWithF32OnCpu) { expect_forward_close_to_f32(DType::bf16, kLogitTolBf16); }

TEST(Precision, ComputeCopiesAreCachedAndRefreshedWhenTheMasterChanges) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Parameter p = make_parameter("w", testing::random_tensor(rng, {4, 3, 3, 5}), false);
  const Tensor x = Tensor::zeros({1, 2, 2, 5}, DType::f16);
  const Tensor& first = compute_weight(p, x, "test", {});
  ASSERT_EQ(first.dtype(), DType::f16);
  Tensor expected = Tensor::empty(p.value.shape(), DType::f16);
  cast(p.value, expected);
  EXPECT_EQ(first.to_floats(), expected.to_floats());
  const void* storage = first.data();
  // Unchanged master: the same copy, not re-cast.
  fill_(p.value, 0.5f);
  EXPECT_EQ(compute_weight(p, x, "test", {}).data(), storage);
  EXPECT_EQ(compute_weight(p, x, "test", {}).to_floats(), expected.to_floats()) << "cached until the version moves";
  // After mark_changed (what the optimizers do) the copy follows the master.
  p.mark_changed();
  for (float v : compute_weight(p, x, "test", {}).to_floats()) ASSERT_EQ(v, 0.5f);
  // A new master tensor (loaded by replacing value) is noticed without a version bump.
  p.value = Tensor::from_floats(std::vector<float>(size_t(p.value.numel()), 0.25f), p.value.shape());
  for (float v : compute_weight(p, x, "test", {}).to_floats()) ASSERT_EQ(v, 0.25f);
  // bf16 input: a bf16 copy; f32 input: the master itself.
  EXPECT_EQ(compute_weight(p, Tensor::zeros({1}, DType::bf16), "test", {}).dtype(), DType::bf16);
  EXPECT_EQ(compute_weight(p, Tensor::zeros({1}, DType::f32), "test", {}).data(), p.value.data());
}

TEST(Precision, HalfGradientsAccumulateIntoF32) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Parameter p = make_parameter("w", Tensor::zeros({3, 7}, DType::f32), false);
  for (DType dt : {DType::f16, DType::bf16}) {
    p.grad.zero_();
    const Tensor g = testing::random_tensor(rng, {21}, dt);  // any shape with the same count
    accumulate_grad(p, g, {});
    accumulate_grad(p, g, {});
    const std::vector<float> got = p.grad.to_floats(), once = g.to_floats();
    ASSERT_EQ(p.grad.dtype(), DType::f32);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], 2.0f * once[i]) << dtype_name(dt) << " " << i;
  }
  EXPECT_THROW(accumulate_grad(p, Tensor::zeros({4}, DType::f16), {}), Error);
}

TEST(Precision, ProbeNamesTheFirstNonFiniteLayer) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet m(small_b0());
  m.set_training(true);
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3});
  for (DType precision : {DType::f32, DType::f16}) {
    SCOPED_TRACE(dtype_name(precision));
    m.set_precision(precision);
    {
      NonFiniteProbe probe;
      Context ctx;
      ctx.set_non_finite_probe(&probe);
      m.forward(ctx, x);
      EXPECT_FALSE(probe.found());
      EXPECT_GT(probe.checked(), 60) << "every leaf layer reports its output";
    }
    Parameter& w = parameter_named(m, "blocks.3.1.conv_dw.weight");
    std::vector<float> values = w.value.to_floats();
    const std::vector<float> original = values;
    values[5] = std::numeric_limits<float>::quiet_NaN();
    w.value.copy_from(Tensor::from_floats(values, w.value.shape()));
    w.mark_changed();
    NonFiniteProbe probe;
    Context ctx;
    ctx.set_non_finite_probe(&probe);
    m.forward(ctx, x);
    EXPECT_TRUE(probe.found());
    EXPECT_EQ(probe.first_layer(), "blocks.3.1.conv_dw");
    w.value.copy_from(Tensor::from_floats(original, w.value.shape()));
    w.mark_changed();
  }
}

TEST(Precision, BadPrecisionNamesTheValue) {
  EXPECT_EQ(parse_precision("FP16"), DType::f16);
  EXPECT_EQ(parse_precision("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_precision("f32"), DType::f32);
  try {
    parse_precision("f8");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown precision 'f8'"), std::string::npos) << e.what();
  }
  EfficientNet m(small_b0());
  EXPECT_THROW(m.set_precision(DType::u8), Error);
}

TEST(PrecisionCuda, B0ForwardInF16OnTheGpuAgreesWithF32OnTheCpu) {
  SG_REQUIRE_CUDA();
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (DType precision : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(precision));
    EfficientNet reference(small_b0()), gpu(small_b0(), Device::cuda(0));
    gpu.set_precision(precision);
    const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
    Context c32, c16;
    const std::vector<float> a = gpu.forward(c16, x.to(Device::cuda(0))).to_floats();
    const std::vector<float> b = reference.forward(c32, x).to_floats();
    EXPECT_LT(relative_error(a, b), precision == DType::f16 ? kLogitTolF16 : kLogitTolBf16);
  }
}

}  // namespace
}  // namespace sg::nn
