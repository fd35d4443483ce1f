// Losses: finite differences on the double reference, fast CPU vs reference, CUDA vs
// reference, PyTorch golden values (every reduction, with and without label smoothing), and
// bad arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/loss_ref.h"
#include "kernels/loss.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using math::PointwiseLoss;
using testing::all_close;
using testing::Rng;

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

// ---- finite differences on the double reference ---------------------------------------------

// The scalar the gradient belongs to: the loss for mean/sum, the sum of the losses for none.
double total(const std::vector<double>& loss, Reduction r) {
  if (r != Reduction::none) return loss[0];
  double s = 0;
  for (double v : loss) s += v;
  return s;
}

TEST(Loss, CrossEntropyBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t N = 4, C = 5;
  const std::vector<int32_t> targets{0, 4, 2, 2};
  for (double eps : {0.0, 0.1})
    for (Reduction r : kReductions) {
      SCOPED_TRACE(::testing::Message() << "label_smoothing " << eps << " " << reduction_name(r));
      const std::vector<double> z = testing::random_doubles(rng, N * C, -3, 3);
      auto f = [&](const std::vector<double>& in) {
        std::vector<double> loss(static_cast<size_t>(N));
        cpu::ref::cross_entropy_forward(in.data(), targets.data(), loss.data(), N, C, r, eps);
        return total(loss, r);
      };
      std::vector<double> dz(z.size());
      cpu::ref::cross_entropy_backward(z.data(), targets.data(), dz.data(), N, C, r, eps, 1.0);
      EXPECT_TRUE(testing::gradient_matches(f, z, dz));
    }
}

TEST(Loss, PointwiseBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t n = 24;
  for (const PointwiseCase& c : kPointwise)
    for (Reduction r : kReductions) {
      SCOPED_TRACE(::testing::Message() << c.name << " " << reduction_name(r));
      std::vector<double> x = testing::random_doubles(rng, n, -4, 4);
      std::vector<double> t = testing::random_doubles(rng, n, -2, 2);
      if (c.kind == PointwiseLoss::bce_with_logits)
        for (double& v : t) v = v > 0 ? 1.0 : 0.0;
      // Keep |x - t| away from the smooth L1 kinks (0 and beta), where the derivative jumps.
      for (size_t i = 0; i < x.size(); ++i) {
        const double d = std::fabs(x[i] - t[i]);
        if (d < 1e-2 || std::fabs(d - c.beta) < 1e-2) x[i] += 0.05;
      }
      auto f = [&](const std::vector<double>& in) {
        std::vector<double> loss(static_cast<size_t>(n));
        cpu::ref::pointwise_loss_forward(c.kind, in.data(), t.data(), loss.data(), n, r, double(c.beta));
        return total(loss, r);
      };
      std::vector<double> dx(x.size());
      cpu::ref::pointwise_loss_backward(c.kind, x.data(), t.data(), dx.data(), n, r, double(c.beta), 1.0);
      EXPECT_TRUE(testing::gradient_matches(f, x, dx));
    }
}

// ---- fast CPU and CUDA vs the reference -----------------------------------------------------

Tensor random_targets(Rng& rng, int64_t N, int64_t C) {
  std::vector<float> t(static_cast<size_t>(N));
  for (float& v : t) v = float(rng.integer(0, C - 1));
  return Tensor::from_floats(t, {N}, DType::i32);
}

// Losses are sums of up to N*C f32 terms: the fast paths sum in another order (and in double).
constexpr testing::Tolerance kLossTolerance{1e-5, 1e-5};

void check_cross_entropy(Rng& rng, Device device, DType dtype, int64_t N, int64_t C) {
  Tensor logits = testing::random_tensor(rng, {N, C}, dtype, -8, 8);
  Tensor targets = random_targets(rng, N, C);
  Tensor logits_d = logits.to(device), targets_d = targets.to(device);
  for (float eps : {0.0f, 0.1f})
    for (Reduction r : kReductions) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " N=" << N << " C=" << C << " eps=" << eps << " "
                                        << reduction_name(r) << " on " << device.str());
      const float scale = 8.0f;
      std::vector<float> ref_loss(static_cast<size_t>(N));
      Tensor ref_grad = Tensor::empty({N, C}, dtype);
      dispatch_floating(dtype, "test", [&](auto tag) {
        using T = typename decltype(tag)::type;
        cpu::ref::cross_entropy_forward(logits.data_as<T>(), targets.data_as<int32_t>(), ref_loss.data(), N, C, r, eps);
        cpu::ref::cross_entropy_backward(logits.data_as<T>(), targets.data_as<int32_t>(), ref_grad.data_as<T>(), N, C,
                                         r, eps, scale);
      });
      if (r != Reduction::none) ref_loss.resize(1);
      Tensor loss = Tensor::empty(loss_shape(r, {N}), DType::f32, device);
      Tensor grad = Tensor::empty({N, C}, dtype, device);
      testing::poison(loss);
      testing::poison(grad);
      cross_entropy_forward({r, eps}, logits_d, targets_d, loss);
      cross_entropy_backward({r, eps}, logits_d, targets_d, scale, grad);
      EXPECT_TRUE(all_close(loss, std::vector<double>(ref_loss.begin(), ref_loss.end()), kLossTolerance));
      // Same formula in f32, but exp may differ by a few ulp between the scalar libm, libmvec's
      // SIMD exp and the GPU: the softmax p (<= 1) carries ~1e-7 absolute error, which the
      // gradient scale multiplies, and p - 1 cancels, so the absolute part scales with `scale`.
      const testing::Tolerance tol =
          dtype == DType::f32 ? testing::Tolerance{1e-6 * scale, 1e-5} : testing::tolerance_for(dtype);
      EXPECT_TRUE(all_close(grad, ref_grad, tol));
    }
}

void check_pointwise(Rng& rng, Device device, DType dtype, Shape shape) {
  Tensor x = testing::random_tensor(rng, shape, dtype, -4, 4);
  Tensor x_d = x.to(device);
  for (const PointwiseCase& c : kPointwise) {
    Tensor t = testing::random_tensor(rng, shape, DType::f32, -2, 2);
    if (c.kind == PointwiseLoss::bce_with_logits) {
      std::vector<float> v = t.to_floats();
      for (float& e : v) e = e > 0 ? 1.0f : 0.0f;
      t = Tensor::from_floats(v, shape);
    }
    Tensor t_d = t.to(device);
    for (Reduction r : kReductions) {
      SCOPED_TRACE(::testing::Message() << c.name << " " << dtype_name(dtype) << " " << shape << " "
                                        << reduction_name(r) << " on " << device.str());
      const float scale = 0.5f;
      const int64_t n = x.numel();
      // The loss reference in double: a float reference summing [300, 1001] losses one after another
      // is off by 5e-5 (found when the CUDA test first ran, on the emulated device), five times the
      // tolerance; the kernels' tree sums are not.
      const std::vector<double> x_double = testing::to_doubles(x), t_double = testing::to_doubles(t);
      std::vector<double> ref_loss(static_cast<size_t>(n));
      cpu::ref::pointwise_loss_forward(c.kind, x_double.data(), t_double.data(), ref_loss.data(), n, r, double(c.beta));
      Tensor ref_grad = Tensor::empty(shape, dtype);
      dispatch_floating(dtype, "test", [&](auto tag) {
        using T = typename decltype(tag)::type;
        cpu::ref::pointwise_loss_backward(c.kind, x.data_as<T>(), t.data_as<float>(), ref_grad.data_as<T>(), n, r,
                                          c.beta, scale);
      });
      if (r != Reduction::none) ref_loss.resize(1);
      Tensor loss = Tensor::empty(loss_shape(r, shape), DType::f32, device);
      Tensor grad = Tensor::empty(shape, dtype, device);
      testing::poison(loss);
      testing::poison(grad);
      pointwise_forward(c, r, x_d, t_d, loss);
      pointwise_backward(c, r, x_d, t_d, scale, grad);
      EXPECT_TRUE(all_close(loss, ref_loss, kLossTolerance));
      const testing::Tolerance tol = dtype == DType::f32 ? testing::Tolerance{1e-6, 1e-5} : testing::tolerance_for(dtype);
      EXPECT_TRUE(all_close(grad, ref_grad, tol));
    }
  }
}

TEST(Loss, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (int64_t N : {1, 3, 7, 17, 33}) {
      for (int64_t C : {1, 2, 6, 13, 1000}) check_cross_entropy(rng, Device::cpu(), dtype, N, C);
      for (int64_t K : {1, 5, 10}) check_pointwise(rng, Device::cpu(), dtype, {N, K});
    }
}

TEST(Loss, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    for (int64_t N : {1, 3, 7, 17, 33}) {
      for (int64_t C : {1, 2, 6, 13, 1000}) check_cross_entropy(rng, Device::cuda(0), dtype, N, C);
      for (int64_t K : {1, 5, 10}) check_pointwise(rng, Device::cuda(0), dtype, {N, K});
    }
    check_cross_entropy(rng, Device::cuda(0), dtype, 1100, 37);  // more rows than one block's warps
    check_pointwise(rng, Device::cuda(0), dtype, {300, 1001});   // many elements per thread
  }
}

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
