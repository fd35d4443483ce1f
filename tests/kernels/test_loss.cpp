// Losses: a case table (tests/support/op_harness.h) run on the fast CPU path and CUDA against
// the reference, finite differences on the double reference, PyTorch golden values (every reduction, with and without label smoothing), and
// bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/loss_ref.h"
#include "kernels/loss.h"
#include "tests/support/op_harness.h"

namespace sg {
namespace {

using math::PointwiseLoss;
using testing::all_close;
using testing::GradientCase;
using testing::OpCase;
using testing::OpInputs;
using testing::OpOutputs;
using testing::Rng;
using Doubles = std::vector<std::vector<double>>;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
const Reduction kReductions[] = {Reduction::none, Reduction::mean, Reduction::sum};

// A pointwise loss under test: kind, beta, and the tensor-level entry points.
struct PointwiseCase {
  const char* name;
  PointwiseLoss kind;
  float beta;
};
const PointwiseCase kPointwise[] = {{"bce_with_logits", PointwiseLoss::bce_with_logits, 0.0f},
                                    {"mse", PointwiseLoss::mse, 0.0f},
                                    {"smooth_l1_beta1", PointwiseLoss::smooth_l1, 1.0f},
                                    {"smooth_l1_beta0.5", PointwiseLoss::smooth_l1, 0.5f},
                                    {"l1", PointwiseLoss::smooth_l1, 0.0f}};

void pointwise_forward(const PointwiseCase& c, Reduction r, const Tensor& x, const Tensor& t, Tensor& loss) {
  switch (c.kind) {
    case PointwiseLoss::bce_with_logits: return bce_with_logits_forward(r, x, t, loss);
    case PointwiseLoss::mse: return mse_loss_forward(r, x, t, loss);
    case PointwiseLoss::smooth_l1: return smooth_l1_loss_forward(r, c.beta, x, t, loss);
  }
}

void pointwise_backward(const PointwiseCase& c, Reduction r, const Tensor& x, const Tensor& t, float scale,
                        Tensor& dx) {
  switch (c.kind) {
    case PointwiseLoss::bce_with_logits: return bce_with_logits_backward(r, x, t, scale, dx);
    case PointwiseLoss::mse: return mse_loss_backward(r, x, t, scale, dx);
    case PointwiseLoss::smooth_l1: return smooth_l1_loss_backward(r, c.beta, x, t, scale, dx);
  }
}

Shape loss_shape(Reduction r, const Shape& per_item) { return r == Reduction::none ? per_item : Shape{1}; }

// ---- Gradient mode: the double reference backwards against central differences -------------------
// The scalar the gradient belongs to is the loss for mean and sum, the sum of the losses for none
// (the backward's grad_scale multiplies it: the runner's dy, one value).

double total(const std::vector<double>& loss, Reduction r) {
  if (r != Reduction::none) return loss[0];
  double s = 0;
  for (double v : loss) s += v;
  return s;
}

std::vector<GradientCase> loss_gradient_cases() {
  std::vector<GradientCase> cases;
  for (double eps : {0.0, 0.1})
    for (Reduction r : kReductions) {
      const int64_t N = 4, C = 5;
      const std::vector<int32_t> targets{0, 4, 2, 2};
      GradientCase k;
      k.op = "cross_entropy";
      k.description = "[4, 5] label_smoothing " + testing::describe(eps) + " " + std::string(reduction_name(r));
      k.input_names = {"logits"};
      k.make_inputs = [=](Rng& rng) { return Doubles{testing::random_doubles(rng, N * C, -3, 3)}; };
      k.forward = [=](const Doubles& in) {
        std::vector<double> loss(static_cast<size_t>(N));
        cpu::ref::cross_entropy_forward(in[0].data(), targets.data(), loss.data(), N, C, r, eps);
        return std::vector<double>{total(loss, r)};
      };
      k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
        Doubles g{std::vector<double>(in[0].size())};
        cpu::ref::cross_entropy_backward(in[0].data(), targets.data(), g[0].data(), N, C, r, eps, dy[0]);
        return g;
      };
      cases.push_back(std::move(k));
    }
  for (const PointwiseCase& c : kPointwise)
    for (Reduction r : kReductions) {
      const int64_t n = 24;
      GradientCase k;
      k.op = c.name;
      k.description = "[24] " + std::string(reduction_name(r));
      k.input_names = {"x"};
      // Inputs: x, then the targets (a constant).
      k.make_inputs = [=](Rng& rng) {
        std::vector<double> x = testing::random_doubles(rng, n, -4, 4);
        std::vector<double> t = testing::random_doubles(rng, n, -2, 2);
        if (c.kind == PointwiseLoss::bce_with_logits)
          for (double& v : t) v = v > 0 ? 1.0 : 0.0;
        // Keep |x - t| away from the smooth L1 kinks (0 and beta), where the derivative jumps.
        for (size_t i = 0; i < x.size(); ++i) {
          const double d = std::fabs(x[i] - t[i]);
          if (d < 1e-2 || std::fabs(d - c.beta) < 1e-2) x[i] += 0.05;
        }
        return Doubles{x, t};
      };
      k.forward = [=](const Doubles& in) {
        std::vector<double> loss(static_cast<size_t>(n));
        cpu::ref::pointwise_loss_forward(c.kind, in[0].data(), in[1].data(), loss.data(), n, r, double(c.beta));
        return std::vector<double>{total(loss, r)};
      };
      k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
        Doubles g{std::vector<double>(in[0].size())};
        cpu::ref::pointwise_loss_backward(c.kind, in[0].data(), in[1].data(), g[0].data(), n, r, double(c.beta),
                                          dy[0]);
        return g;
      };
      cases.push_back(std::move(k));
    }
  return cases;
}
[[maybe_unused]] const bool kGradientsRegistered =
    testing::register_gradient_tests("Loss", "BackwardMatchesFiniteDifferences", loss_gradient_cases);

// ---- The case table: fast CPU and CUDA against the reference ---------------------------------------
// The loss is f32 whatever the input dtype; the gradient has the input's dtype. The gradient scale
// is chosen so that gradients are of order one (scale * N for a mean), where one error measure per
// dtype means the same thing for every reduction (a mean's gradient of order 1/N would pass any
// absolute tolerance); the loss sums in another order (and in double) on the fast paths.

Tensor random_targets(Rng& rng, int64_t N, int64_t C) {
  std::vector<float> t(static_cast<size_t>(N));
  for (float& v : t) v = float(rng.integer(0, C - 1));
  return Tensor::from_floats(t, {N}, DType::i32);
}

float grad_scale(float scale, Reduction r, int64_t count) {
  return r == Reduction::mean ? scale * float(count) : scale;
}

OpCase cross_entropy_case(DType dtype, int64_t N, int64_t C, float eps, Reduction r, bool cuda_only) {
  const float scale = grad_scale(8.0f, r, N);
  OpCase k;
  k.op = "cross_entropy " + std::string(reduction_name(r));
  k.description = testing::describe(dtype, {N, C}) + " label_smoothing " + testing::describe(eps);
  k.outputs = {{"loss"}, {"dlogits"}};
  k.cuda_only = cuda_only;
  k.make_inputs = [=](Rng& rng) {
    return OpInputs({testing::random_tensor(rng, {N, C}, dtype, -8, 8), random_targets(rng, N, C)});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &logits = i.tensors[0], &targets = i.tensors[1];
    std::vector<float> loss(static_cast<size_t>(N));
    Tensor grad = testing::empty_like(logits);
    testing::with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::cross_entropy_forward(logits.data_as<T>(), targets.data_as<int32_t>(), loss.data(), N, C, r, eps);
      cpu::ref::cross_entropy_backward(logits.data_as<T>(), targets.data_as<int32_t>(), grad.data_as<T>(), N, C, r,
                                       eps, scale);
    });
    if (r != Reduction::none) loss.resize(1);
    return OpOutputs{Tensor::from_floats(loss, loss_shape(r, {N})), grad};
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    cross_entropy_forward({r, eps}, i.tensors[0], i.tensors[1], o[0]);
    cross_entropy_backward({r, eps}, i.tensors[0], i.tensors[1], scale, o[1]);
  };
  k.bytes = double(N * C * int64_t(3 * dtype_size(dtype)) + N * (2 * 4 + 4));  // logits twice, dlogits; targets, loss
  return k;
}

OpCase pointwise_case(const PointwiseCase& c, DType dtype, const Shape& shape, Reduction r, bool cuda_only) {
  const float scale = grad_scale(0.5f, r, shape.numel());
  OpCase k;
  k.op = std::string(c.name) + " " + std::string(reduction_name(r));
  k.description = testing::describe(dtype, shape);
  k.outputs = {{"loss"}, {"dx"}};
  k.cuda_only = cuda_only;
  k.make_inputs = [=](Rng& rng) {
    Tensor x = testing::random_tensor(rng, shape, dtype, -4, 4);
    Tensor t = testing::random_tensor(rng, shape, DType::f32, -2, 2);
    if (c.kind == PointwiseLoss::bce_with_logits) {
      std::vector<float> v = t.to_floats();
      for (float& e : v) e = e > 0 ? 1.0f : 0.0f;
      t = Tensor::from_floats(v, shape);
    }
    return OpInputs({x, t});
  };
  k.reference = [=](const OpInputs& i) {
    const Tensor &x = i.tensors[0], &t = i.tensors[1];
    const int64_t n = x.numel();
    // The loss reference in double: a float reference summing [300, 1001] losses one after another
    // is off by 5e-5 (found when the CUDA test first ran, on the emulated device), five times the
    // tolerance; the kernels' tree sums are not.
    const std::vector<double> x_double = testing::to_doubles(x), t_double = testing::to_doubles(t);
    std::vector<double> loss(static_cast<size_t>(n));
    cpu::ref::pointwise_loss_forward(c.kind, x_double.data(), t_double.data(), loss.data(), n, r, double(c.beta));
    if (r != Reduction::none) loss.resize(1);
    Tensor grad = testing::empty_like(x);
    testing::with_type(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::ref::pointwise_loss_backward(c.kind, x.data_as<T>(), t.data_as<float>(), grad.data_as<T>(), n, r, c.beta,
                                        scale);
    });
    return OpOutputs{Tensor::from_floats(std::vector<float>(loss.begin(), loss.end()), loss_shape(r, shape)), grad};
  };
  k.run = [=](const OpInputs& i, OpOutputs& o) {
    pointwise_forward(c, r, i.tensors[0], i.tensors[1], o[0]);
    pointwise_backward(c, r, i.tensors[0], i.tensors[1], scale, o[1]);
  };
  k.bytes = double(shape.numel() * int64_t(2 * dtype_size(dtype) + 4 * 2));
  return k;
}

std::vector<OpCase> loss_cases() {
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes) {
    for (int64_t N : {1, 3, 7, 17, 33}) {
      for (int64_t C : {1, 2, 6, 13, 1000})
        for (float eps : {0.0f, 0.1f})
          for (Reduction r : kReductions) cases.push_back(cross_entropy_case(dtype, N, C, eps, r, false));
      for (int64_t K : {1, 5, 10})
        for (const PointwiseCase& c : kPointwise)
          for (Reduction r : kReductions) cases.push_back(pointwise_case(c, dtype, {N, K}, r, false));
    }
    // More rows than one block's warps; many elements per thread.
    for (float eps : {0.0f, 0.1f})
      for (Reduction r : kReductions) cases.push_back(cross_entropy_case(dtype, 1100, 37, eps, r, true));
    for (const PointwiseCase& c : kPointwise)
      for (Reduction r : kReductions) cases.push_back(pointwise_case(c, dtype, {300, 1001}, r, true));
  }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("Loss", "", loss_cases);

// ---- PyTorch ----------------------------------------------------------------------------------

// f16/bf16 logits are rounded copies of the golden's float logits: compare loosely there.
testing::Tolerance golden_tolerance(DType dtype) {
  switch (dtype) {
    case DType::f16: return {1e-2, 1e-2};
    case DType::bf16: return {1e-1, 5e-2};
    default: return {1e-5, 1e-5};
  }
}

std::vector<double> scaled(std::vector<double> v, double s) {
  for (double& e : v) e *= s;
  return v;
}

TEST(Loss, CrossEntropyMatchesPyTorchGolden) {
  const testing::GoldenFile golden("loss");
  const float scale = 4.0f;  // gradients come back multiplied by the loss scale
  for (DType dtype : kFloatTypes) {
    Tensor logits = golden.tensor("ce/logits", dtype), targets = golden.tensor("ce/targets", DType::i32);
    const int64_t N = logits.dim(0), C = logits.dim(1);
    for (auto [name, eps] : {std::pair<const char*, float>{"plain", 0.0f}, {"smooth", 0.1f}})
      for (Reduction r : kReductions) {
        const std::string prefix = std::string("ce/") + name + "/" + std::string(reduction_name(r));
        SCOPED_TRACE(prefix + " " + std::string(dtype_name(dtype)));
        Tensor loss = Tensor::empty(loss_shape(r, {N}), DType::f32), grad = Tensor::empty({N, C}, dtype);
        cross_entropy_forward({r, eps}, logits, targets, loss);
        cross_entropy_backward({r, eps}, logits, targets, scale, grad);
        EXPECT_TRUE(all_close(loss, golden.doubles(prefix + "/loss"), golden_tolerance(dtype)));
        EXPECT_TRUE(all_close(grad, scaled(golden.doubles(prefix + "/dx"), scale), golden_tolerance(dtype)));
      }
  }
}

TEST(Loss, PointwiseMatchesPyTorchGolden) {
  const testing::GoldenFile golden("loss");
  const float scale = 2.0f;
  for (DType dtype : kFloatTypes)
    for (const PointwiseCase& c : kPointwise) {
      if (c.kind == PointwiseLoss::smooth_l1 && c.beta == 0.0f) continue;  // not in the golden file
      const bool bce = c.kind == PointwiseLoss::bce_with_logits;
      Tensor x = golden.tensor(bce ? "bce/x" : "reg/x", dtype), t = golden.tensor(bce ? "bce/t" : "reg/t");
      const std::string group = bce ? "bce" : c.name;
      for (Reduction r : kReductions) {
        const std::string prefix = group + "/" + std::string(reduction_name(r));
        SCOPED_TRACE(prefix + " " + std::string(dtype_name(dtype)));
        Tensor loss = Tensor::empty(loss_shape(r, x.shape()), DType::f32), grad = Tensor::empty(x.shape(), dtype);
        pointwise_forward(c, r, x, t, loss);
        pointwise_backward(c, r, x, t, scale, grad);
        EXPECT_TRUE(all_close(loss, golden.doubles(prefix + "/loss"), golden_tolerance(dtype)));
        EXPECT_TRUE(all_close(grad, scaled(golden.doubles(prefix + "/dx"), scale), golden_tolerance(dtype)));
      }
    }
}

// ---- bad arguments ------------------------------------------------------------------------------

TEST(Loss, RejectsBadArguments) {
  Tensor logits = Tensor::zeros({3, 4}, DType::f32), loss = Tensor::zeros({1}, DType::f32);
  Tensor targets = Tensor::from_floats({0, 3, 1}, {3}, DType::i32);
  Tensor bad_target = Tensor::from_floats({0, 4, 1}, {3}, DType::i32);
  Tensor float_targets = Tensor::zeros({3}, DType::f32), grad = Tensor::zeros({3, 4}, DType::f32);
  EXPECT_NO_THROW(cross_entropy_forward({}, logits, targets, loss));
  EXPECT_THROW(
      {
        try {
          cross_entropy_forward({}, logits, bad_target, loss);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("cross_entropy_forward: targets[1] = 4 is outside [0, 4) (logits [3, 4])"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(
      {
        try {
          Tensor per_sample = Tensor::zeros({1}, DType::f32);
          cross_entropy_forward({Reduction::none, 0}, logits, targets, per_sample);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("cross_entropy_forward: loss has shape [1], expected [3]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(cross_entropy_forward({}, logits, float_targets, loss), Error);
  EXPECT_THROW(cross_entropy_forward({Reduction::mean, 1.5f}, logits, targets, loss), Error);
  EXPECT_THROW(cross_entropy_backward({}, logits, bad_target, 1.0f, grad), Error);
  Tensor grad_f16 = Tensor::zeros({3, 4}, DType::f16);
  EXPECT_THROW(cross_entropy_backward({}, logits, targets, 1.0f, grad_f16), Error);

  Tensor x = Tensor::zeros({3, 5}, DType::f32), t = Tensor::zeros({3, 5}, DType::f32);
  Tensor t_bad = Tensor::zeros({5, 3}, DType::f32), t_f16 = Tensor::zeros({3, 5}, DType::f16);
  Tensor dx = Tensor::zeros({3, 5}, DType::f32), none_loss = Tensor::zeros({3, 5}, DType::f32);
  EXPECT_NO_THROW(bce_with_logits_forward(Reduction::none, x, t, none_loss));
  EXPECT_THROW(
      {
        try {
          bce_with_logits_forward(Reduction::mean, x, t_bad, loss);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("bce_with_logits_forward: targets has shape [5, 3], expected [3, 5]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(mse_loss_forward(Reduction::mean, x, t_f16, loss), Error);
  EXPECT_THROW(mse_loss_forward(Reduction::none, x, t, loss), Error);
  EXPECT_THROW(smooth_l1_loss_forward(Reduction::mean, -1.0f, x, t, loss), Error);
  EXPECT_THROW(smooth_l1_loss_backward(Reduction::mean, 1.0f, x, t, 1.0f, grad), Error);
  EXPECT_THROW(parse_reduction("avg"), Error);
  EXPECT_EQ(parse_reduction("sum"), Reduction::sum);
  if (cuda_available()) {
    Tensor t_gpu = t.to(Device::cuda(0));
    EXPECT_THROW(mse_loss_forward(Reduction::mean, x, t_gpu, loss), Error);
  }
}

}  // namespace
}  // namespace sg
