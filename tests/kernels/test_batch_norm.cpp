// Batch norm (+ fused activation): finite differences on the double reference, fast CPU vs
// reference, CUDA vs reference, PyTorch golden values (training and evaluation, running
// statistics, BN+SiLU and BN+Mish), and bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/cpu/batch_norm_ref.h"
#include "kernels/cpu/isa.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;
using testing::Tolerance;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
const Activation kFused[] = {Activation::identity, Activation::relu, Activation::relu6, Activation::swish,
                             Activation::mish};

// Every tensor of one batch-norm call, on the CPU.
struct BnCase {
  Tensor x, dy, gamma, beta, running_mean, running_var;
};

BnCase random_case(Rng& rng, const Shape& shape, DType dtype) {
  const int64_t C = shape[-1];
  BnCase k;
  k.x = testing::random_tensor(rng, shape, dtype, -2.0f, 3.0f);
  k.dy = testing::random_tensor(rng, shape, dtype);
  k.gamma = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 1.5f);
  k.beta = testing::random_tensor(rng, {C}, DType::f32, -0.5f, 0.5f);
  k.running_mean = testing::random_tensor(rng, {C}, DType::f32, -0.2f, 0.2f);
  k.running_var = testing::random_tensor(rng, {C}, DType::f32, 0.5f, 2.0f);
  return k;
}

Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.dtype());
  c.copy_from(t);
  return c;
}

// The reference's results for one case, all on the CPU in the case's storage types.
struct BnResult {
  Tensor y, running_mean, running_var, saved_mean, saved_invstd, dx, dgamma, dbeta;
};

BnResult reference(const BnCase& k, const BatchNormParams& p, bool training) {
  const int64_t C = k.x.dim(-1), M = k.x.numel() / C;
  BnResult r;
  r.y = Tensor::empty(k.x.shape(), k.x.dtype());
  r.dx = Tensor::empty(k.x.shape(), k.x.dtype());
  r.running_mean = copy_of(k.running_mean);
  r.running_var = copy_of(k.running_var);
  r.saved_mean = Tensor::empty({C}, DType::f32);
  r.saved_invstd = Tensor::empty({C}, DType::f32);
  r.dgamma = Tensor::empty({C}, DType::f32);
  r.dbeta = Tensor::empty({C}, DType::f32);
  const float* g = k.gamma.data_as<float>();
  const float* b = k.beta.data_as<float>();
  dispatch_floating(k.x.dtype(), "test", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (training) {
      cpu::ref::batch_norm_forward_train(k.x.data_as<T>(), g, b, r.running_mean.data_as<float>(),
                                         r.running_var.data_as<float>(), r.y.data_as<T>(), r.saved_mean.data_as<float>(),
                                         r.saved_invstd.data_as<float>(), M, C, p.eps, p.momentum, p.activation);
      cpu::ref::batch_norm_backward(k.x.data_as<T>(), k.dy.data_as<T>(), g, b, r.saved_mean.data_as<float>(),
                                    r.saved_invstd.data_as<float>(), true, r.dx.data_as<T>(),
                                    r.dgamma.data_as<float>(), r.dbeta.data_as<float>(), M, C, p.activation);
    } else {
      cpu::ref::batch_norm_forward_eval(k.x.data_as<T>(), g, b, k.running_mean.data_as<float>(),
                                        k.running_var.data_as<float>(), r.y.data_as<T>(), M, C, p.eps, p.activation);
      std::vector<float> invstd(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c)
        invstd[size_t(c)] = float(1.0 / std::sqrt(double(k.running_var.data_as<float>()[c]) + p.eps));
      cpu::ref::batch_norm_backward(k.x.data_as<T>(), k.dy.data_as<T>(), g, b, k.running_mean.data_as<float>(),
                                    invstd.data(), false, r.dx.data_as<T>(), r.dgamma.data_as<float>(),
                                    r.dbeta.data_as<float>(), M, C, p.activation);
    }
  });
  return r;
}

// Runs the tensor-level ops on `device`; results come back to the CPU.
BnResult run_op(const BnCase& k, const BatchNormParams& p, bool training, Device device) {
  const int64_t C = k.x.dim(-1);
  const Tensor x = k.x.to(device), dy = k.dy.to(device), gamma = k.gamma.to(device), beta = k.beta.to(device);
  Tensor rm = k.running_mean.to(device), rv = k.running_var.to(device);
  Tensor y = Tensor::empty(k.x.shape(), k.x.dtype(), device), dx = Tensor::empty(k.x.shape(), k.x.dtype(), device);
  Tensor sm = Tensor::empty({C}, DType::f32, device), si = Tensor::empty({C}, DType::f32, device);
  Tensor dgamma = Tensor::empty({C}, DType::f32, device), dbeta = Tensor::empty({C}, DType::f32, device);
  for (Tensor* t : {&y, &dx, &sm, &si, &dgamma, &dbeta}) testing::poison(*t);
  if (training) {
    batch_norm_forward_train(p, x, gamma, beta, rm, rv, y, sm, si);
    batch_norm_backward(p, x, dy, gamma, beta, sm, si, dx, dgamma, dbeta);
  } else {
    batch_norm_forward_eval(p, x, gamma, beta, rm, rv, y);
    batch_norm_backward_eval(p, x, dy, gamma, beta, rm, rv, dx, dgamma, dbeta);
  }
  BnResult r;
  r.y = y.to(Device::cpu());
  r.dx = dx.to(Device::cpu());
  r.running_mean = rm.to(Device::cpu());
  r.running_var = rv.to(Device::cpu());
  r.saved_mean = sm.to(Device::cpu());
  r.saved_invstd = si.to(Device::cpu());
  r.dgamma = dgamma.to(Device::cpu());
  r.dbeta = dbeta.to(Device::cpu());
  return r;
}

// ReLU and ReLU6 have kinks (at 0, and at 6) where the derivative jumps. An element whose
// pre-activation lies within rounding of a kink falls on one side in the double reference and on
// the other in f32 (the device's summation order moves the mean and invstd by an ulp), and its dx
// differs by a whole dy * gamma * invstd: with 1.6M elements that happens in about one run in ten
// (seed 2438709784562392669: 2 elements of [32, 56, 56, 16], ReLU6). Such elements' dx are not
// compared; each moves its channel's sums by one dy / M, inside the tolerance.
void skip_dx_at_kinks(BnResult& actual, BnResult& expected, const BnCase& k, const BatchNormParams& p,
                      bool training) {
  if (p.activation != Activation::relu && p.activation != Activation::relu6) return;
  const int64_t C = k.x.shape()[-1];
  const std::vector<float> x = k.x.to_floats(), gamma = k.gamma.to_floats(), beta = k.beta.to_floats();
  std::vector<float> mean, invstd;
  if (training) {
    mean = expected.saved_mean.to_floats();
    invstd = expected.saved_invstd.to_floats();
  } else {
    mean = k.running_mean.to_floats();
    for (float v : k.running_var.to_floats()) invstd.push_back(float(1.0 / std::sqrt(double(v) + p.eps)));
  }
  const size_t bytes = dtype_size(actual.dx.dtype());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % size_t(C);
    const double z = double(gamma[c]) * (double(x[i]) - mean[c]) * invstd[c] + beta[c];
    const bool near_kink = std::fabs(z) < 1e-4 || (p.activation == Activation::relu6 && std::fabs(z - 6.0) < 1e-4);
    if (!near_kink) continue;
    std::memset(static_cast<char*>(actual.dx.data()) + i * bytes, 0, bytes);
    std::memset(static_cast<char*>(expected.dx.data()) + i * bytes, 0, bytes);
  }
}

// Per-channel statistics and parameter gradients are f32 sums over M values whatever the
// storage type; they differ from the double-summed reference by float rounding only.
const Tolerance kStatTol{1e-5, 1e-4};

void expect_results_close(const BnResult& actual, const BnResult& expected, bool training, DType dtype,
                          Tolerance tol) {
  EXPECT_TRUE(all_close(actual.y, expected.y, tol)) << "y";
  EXPECT_TRUE(all_close(actual.dx, expected.dx, tol)) << "dx";
  // dgamma and dbeta sum M = numel / C terms: allow an abs error growing with M on top of the
  // relative one (f32 partial sums against the reference's double sums).
  const double M = double(actual.dx.numel()) / double(actual.dgamma.numel());
  const Tolerance grad_tol{kStatTol.abs * M, kStatTol.rel};
  EXPECT_TRUE(all_close(actual.dgamma, expected.dgamma, grad_tol)) << "dgamma";
  EXPECT_TRUE(all_close(actual.dbeta, expected.dbeta, grad_tol)) << "dbeta";
  EXPECT_TRUE(all_close(actual.running_mean, expected.running_mean, kStatTol)) << "running_mean";
  EXPECT_TRUE(all_close(actual.running_var, expected.running_var, kStatTol)) << "running_var";
  if (training) {
    EXPECT_TRUE(all_close(actual.saved_mean, expected.saved_mean, kStatTol)) << "saved_mean";
    EXPECT_TRUE(all_close(actual.saved_invstd, expected.saved_invstd, kStatTol)) << "saved_invstd";
  }
  (void)dtype;
}

// ---- finite differences on the double reference --------------------------------------------

TEST(BatchNorm, TrainBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t M = 2 * 3 * 2, C = 4;
  for (Activation act : {Activation::identity, Activation::sigmoid, Activation::swish, Activation::mish}) {
    SCOPED_TRACE(std::string(activation_name(act)));
    // params = x [M, C] ++ gamma [C] ++ beta [C]
    std::vector<double> params = testing::random_doubles(rng, size_t(M * C + 2 * C), -2, 2);
    const std::vector<double> g = testing::random_doubles(rng, size_t(M * C));
    const double eps = 1e-3, momentum = 0.1;
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(size_t(M * C)), rm(size_t(C), 0.0), rv(size_t(C), 1.0), sm(static_cast<size_t>(C)), si(static_cast<size_t>(C));
      cpu::ref::batch_norm_forward_train(in.data(), in.data() + M * C, in.data() + M * C + C, rm.data(), rv.data(),
                                         y.data(), sm.data(), si.data(), M, C, eps, momentum, act);
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
      return s;
    };
    std::vector<double> y(size_t(M * C)), rm(size_t(C), 0.0), rv(size_t(C), 1.0), sm(static_cast<size_t>(C)), si(static_cast<size_t>(C));
    const double* gamma = params.data() + M * C;
    const double* beta = gamma + C;
    cpu::ref::batch_norm_forward_train(params.data(), gamma, beta, rm.data(), rv.data(), y.data(), sm.data(),
                                       si.data(), M, C, eps, momentum, act);
    std::vector<double> grad(params.size());
    cpu::ref::batch_norm_backward(params.data(), g.data(), gamma, beta, sm.data(), si.data(), true, grad.data(),
                                  grad.data() + M * C, grad.data() + M * C + C, M, C, act);
    EXPECT_TRUE(testing::gradient_matches(loss, params, grad));
  }
}

TEST(BatchNorm, EvalBackwardMatchesFiniteDifferences) {
  Rng rng;
  SG_TRACE_SEED(rng);
  const int64_t M = 7, C = 3;
  for (Activation act : {Activation::identity, Activation::swish, Activation::mish}) {
    SCOPED_TRACE(std::string(activation_name(act)));
    std::vector<double> params = testing::random_doubles(rng, size_t(M * C + 2 * C), -2, 2);
    const std::vector<double> g = testing::random_doubles(rng, size_t(M * C));
    const std::vector<double> rm = testing::random_doubles(rng, size_t(C), -0.5, 0.5);
    const std::vector<double> rv = testing::random_doubles(rng, size_t(C), 0.5, 2.0);
    const double eps = 1e-5;
    auto loss = [&](const std::vector<double>& in) {
      std::vector<double> y(size_t(M * C));
      cpu::ref::batch_norm_forward_eval(in.data(), in.data() + M * C, in.data() + M * C + C, rm.data(), rv.data(),
                                        y.data(), M, C, eps, act);
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += y[i] * g[i];
      return s;
    };
    std::vector<double> invstd(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) invstd[size_t(c)] = 1.0 / std::sqrt(rv[size_t(c)] + eps);
    std::vector<double> grad(params.size());
    const double* gamma = params.data() + M * C;
    cpu::ref::batch_norm_backward(params.data(), g.data(), gamma, gamma + C, rm.data(), invstd.data(), false,
                                  grad.data(), grad.data() + M * C, grad.data() + M * C + C, M, C, act);
    EXPECT_TRUE(testing::gradient_matches(loss, params, grad));
  }
}

// ---- fast CPU vs reference ---------------------------------------------------------------

const Shape kShapes[] = {{1, 1, 1, 5},  {3, 1, 1, 8},   {1, 3, 3, 13}, {3, 7, 7, 3},
                         {1, 17, 17, 24}, {3, 33, 33, 5}, {3, 7, 5, 6},  {2, 17, 3, 37}};

TEST(BatchNorm, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : kShapes)
      for (Activation act : kFused)
        for (bool training : {true, false}) {
          if (training && shape.numel() / shape[-1] < 2) continue;
          SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " " << activation_name(act)
                                            << (training ? " train" : " eval"));
          const BnCase k = random_case(rng, shape, dtype);
          BatchNormParams p;
          p.activation = act;
          p.momentum = 0.3;
          BnResult actual = run_op(k, p, training, Device::cpu()), expected = reference(k, p, training);
          skip_dx_at_kinks(actual, expected, k, p, training);
          expect_results_close(actual, expected, training, dtype, testing::tolerance_for(dtype));
        }
}

// Shifted sums keep the variance right when |mean| >> std (a plain sum of squares in f32
// loses every digit here).
TEST(BatchNorm, VarianceStableForLargeMean) {
  Rng rng;
  SG_TRACE_SEED(rng);
  BnCase k = random_case(rng, {4, 16, 16, 8}, DType::f32);
  std::vector<float> values = k.x.to_floats();
  for (float& v : values) v = 1000.0f + 0.01f * v;
  k.x = Tensor::from_floats(values, k.x.shape());
  const BatchNormParams p;
  const BnResult expected = reference(k, p, true);
  const BnResult actual = run_op(k, p, true, Device::cpu());
  EXPECT_TRUE(all_close(actual.saved_invstd, expected.saved_invstd, {0, 1e-3}));
  EXPECT_TRUE(all_close(actual.running_var, expected.running_var, {0, 1e-3}));
  EXPECT_TRUE(all_close(actual.y, expected.y, {1e-3, 1e-3}));
}

// The first row far from the channel's mean. A variance taken from sums shifted by row 0,
// sum (x - x0)^2 / M - (sum (x - x0) / M)^2, then subtracts two numbers about M times larger than
// the variance (at least (x0 - mean)^2 / M of it comes from row 0 alone), and float partial sums
// carry no digits for that: with M = 65536 the result was off by far more than kStatTol.
// Channels 0-3: row 0 = 0 below a cluster at `base`; channels 4-7: row 0 = base + 500 * spread
// above it. Per dtype, base and spread keep the cluster's values distinct in storage.
BnCase far_first_row_case(Rng& rng, DType dtype) {
  const Shape shape{16, 64, 64, 8};
  const double base = dtype == DType::f32 ? 1e4 : 1e3;
  const double spread = dtype == DType::f32 ? 0.1 : dtype == DType::f16 ? 4.0 : 64.0;
  BnCase k = random_case(rng, shape, DType::f32);
  std::vector<float> v = testing::random_tensor(rng, shape, DType::f32).to_floats();
  for (float& x : v) x = float(base + spread * x);
  for (int64_t c = 0; c < 8; ++c) v[size_t(c)] = c < 4 ? 0.0f : float(base + 500 * spread);
  k.x = Tensor::from_floats(v, shape, dtype);
  k.dy = testing::random_tensor(rng, shape, dtype);
  return k;
}

// Statistics within kStatTol of the double reference. y = (x - mean) * invstd * gamma + beta is
// ill-conditioned here: one float rounding of the mean (base * 2^-24) moves it by that times
// invstd * gamma, which bounds y's tolerance on top of the storage type's.
void expect_far_first_row_matches_reference(const BnResult& actual, const BnResult& expected, DType dtype) {
  EXPECT_TRUE(all_close(actual.saved_mean, expected.saved_mean, kStatTol)) << "saved_mean";
  EXPECT_TRUE(all_close(actual.saved_invstd, expected.saved_invstd, kStatTol)) << "saved_invstd";
  EXPECT_TRUE(all_close(actual.running_mean, expected.running_mean, kStatTol)) << "running_mean";
  EXPECT_TRUE(all_close(actual.running_var, expected.running_var, kStatTol)) << "running_var";
  const std::vector<float> mean = expected.saved_mean.to_floats(), invstd = expected.saved_invstd.to_floats();
  double y_abs = 0;
  for (size_t c = 0; c < mean.size(); ++c)
    y_abs = std::max(y_abs, 2.0 * std::ldexp(std::fabs(double(mean[c])), -23) * double(invstd[c]) * 1.5);
  const Tolerance storage = testing::tolerance_for(dtype);
  EXPECT_TRUE(all_close(actual.y, expected.y, {storage.abs + y_abs, std::max(storage.rel, 1e-4)})) << "y";
}

TEST(BatchNorm, VarianceStableWhenTheFirstRowIsFarFromTheMean) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    const BnCase k = far_first_row_case(rng, dtype);
    BatchNormParams p;
    p.activation = Activation::identity;
    const BnResult expected = reference(k, p, true);
    for (cpu::Isa isa : {cpu::Isa::baseline, cpu::Isa::avx2, cpu::Isa::avx512}) {
      if (!cpu::isa_supported(isa)) continue;
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << cpu::isa_name(isa));
      const cpu::Isa previous = cpu::set_isa_for_testing(isa);
      const BnResult actual = run_op(k, p, true, Device::cpu());
      cpu::set_isa_for_testing(previous);
      expect_far_first_row_matches_reference(actual, expected, dtype);
    }
  }
}

TEST(BatchNorm, CudaVarianceStableWhenTheFirstRowIsFarFromTheMean) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const BnCase k = far_first_row_case(rng, dtype);
    BatchNormParams p;
    p.activation = Activation::identity;
    const BnResult actual = run_op(k, p, true, Device::cuda(0));
    expect_far_first_row_matches_reference(actual, reference(k, p, true), dtype);
    // The partials merge in a fixed order: the same inputs give the same bits.
    const BnResult again = run_op(k, p, true, Device::cuda(0));
    EXPECT_EQ(again.saved_mean.to_floats(), actual.saved_mean.to_floats());
    EXPECT_EQ(again.saved_invstd.to_floats(), actual.saved_invstd.to_floats());
    EXPECT_EQ(again.running_var.to_floats(), actual.running_var.to_floats());
    EXPECT_EQ(again.y.to_floats(), actual.y.to_floats());
  }
}

TEST(BatchNorm, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    for (const Shape& shape : {Shape{1, 1, 1, 5}, Shape{3, 7, 7, 3}, Shape{1, 17, 17, 24}, Shape{3, 33, 33, 5},
                               Shape{2, 17, 3, 37}, Shape{3, 7, 5, 6}, Shape{4, 28, 28, 96}, Shape{2, 9, 9, 1280},
                               Shape{32, 56, 56, 16}})
      for (Activation act : kFused)
        for (bool training : {true, false}) {
          if (training && shape.numel() / shape[-1] < 2) continue;
          SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " " << shape << " " << activation_name(act)
                                            << (training ? " train" : " eval"));
          const BnCase k = random_case(rng, shape, dtype);
          BatchNormParams p;
          p.activation = act;
          // GPU transcendental functions and FMA contraction differ from the host by a few ulp.
          const Tolerance tol = dtype == DType::f32 ? Tolerance{1e-4, 1e-4} : testing::tolerance_for(dtype);
          BnResult actual = run_op(k, p, training, Device::cuda(0)), expected = reference(k, p, training);
          skip_dx_at_kinks(actual, expected, k, p, training);
          expect_results_close(actual, expected, training, dtype, tol);
        }
  }
}

// ---- PyTorch golden ------------------------------------------------------------------------

TEST(BatchNorm, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("batchnorm");
  struct GoldenCase {
    const char* name;
    Activation act;
    bool training;
  };
  const GoldenCase cases[] = {{"train", Activation::identity, true},
                              {"eval", Activation::identity, false},
                              {"train_silu", Activation::swish, true},
                              {"train_mish", Activation::mish, true},
                              {"eval_silu", Activation::swish, false}};
  for (DType dtype : kFloatTypes)
    for (const GoldenCase& gc : cases) {
      const std::string n = gc.name;
      SCOPED_TRACE(n + " " + std::string(dtype_name(dtype)));
      BnCase k;
      k.x = golden.tensor(n + "/x", dtype);
      k.dy = golden.tensor(n + "/dy", dtype);
      k.gamma = golden.tensor(n + "/gamma");
      k.beta = golden.tensor(n + "/beta");
      k.running_mean = golden.tensor(n + "/running_mean");
      k.running_var = golden.tensor(n + "/running_var");
      BatchNormParams p;
      p.eps = golden.scalar(n + "/eps");
      p.momentum = golden.scalar(n + "/momentum");
      p.activation = gc.act;
      const BnResult r = run_op(k, p, gc.training, Device::cpu());
      // f16/bf16 inputs were rounded from the golden's float inputs: compare loosely there.
      const Tolerance tol = dtype == DType::f32 ? Tolerance{1e-5, 1e-5} : Tolerance{0.05, 0.02};
      const Tolerance sum_tol = dtype == DType::f32 ? Tolerance{1e-4, 1e-5} : Tolerance{0.5, 0.02};
      EXPECT_TRUE(all_close(r.y, golden.doubles(n + "/y"), tol)) << "y";
      EXPECT_TRUE(all_close(r.dx, golden.doubles(n + "/dx"), tol)) << "dx";
      EXPECT_TRUE(all_close(r.dgamma, golden.doubles(n + "/dgamma"), sum_tol)) << "dgamma";
      EXPECT_TRUE(all_close(r.dbeta, golden.doubles(n + "/dbeta"), sum_tol)) << "dbeta";
      EXPECT_TRUE(all_close(r.running_mean, golden.doubles(n + "/running_mean_after"), tol)) << "running_mean";
      EXPECT_TRUE(all_close(r.running_var, golden.doubles(n + "/running_var_after"), tol)) << "running_var";
      if (gc.training) {
        EXPECT_TRUE(all_close(r.saved_mean, golden.doubles(n + "/saved_mean"), tol)) << "saved_mean";
        EXPECT_TRUE(all_close(r.saved_invstd, golden.doubles(n + "/saved_invstd"), tol)) << "saved_invstd";
      }
    }
}

// Several training steps with Keras's momentum (0.99 == PyTorch 0.01) and eps 1e-3.
TEST(BatchNorm, RunningStatisticsOverStepsMatchPyTorch) {
  const testing::GoldenFile golden("batchnorm");
  Tensor rm = golden.tensor("steps/running_mean"), rv = golden.tensor("steps/running_var");
  const Tensor gamma = golden.tensor("steps/gamma"), beta = golden.tensor("steps/beta");
  BatchNormParams p;
  p.eps = golden.scalar("steps/eps");
  p.momentum = golden.scalar("steps/momentum");
  const int steps = int(golden.scalar("steps/count"));
  for (int s = 0; s < steps; ++s) {
    const Tensor x = golden.tensor("steps/x" + std::to_string(s));
    const int64_t C = x.dim(-1);
    Tensor y = Tensor::empty(x.shape(), DType::f32), sm = Tensor::empty({C}, DType::f32),
           si = Tensor::empty({C}, DType::f32);
    batch_norm_forward_train(p, x, gamma, beta, rm, rv, y, sm, si);
  }
  EXPECT_TRUE(all_close(rm, golden.doubles("steps/running_mean_after"), {1e-6, 1e-5}));
  EXPECT_TRUE(all_close(rv, golden.doubles("steps/running_var_after"), {1e-6, 1e-5}));
}

// ---- bad arguments -------------------------------------------------------------------------

TEST(BatchNorm, RejectsBadArguments) {
  const BatchNormParams p;
  Tensor x = Tensor::zeros({2, 3, 3, 4}, DType::f32);
  Tensor y = Tensor::zeros({2, 3, 3, 4}, DType::f32);
  Tensor c4 = Tensor::zeros({4}, DType::f32), c4b = Tensor::zeros({4}, DType::f32), c4c = Tensor::zeros({4}, DType::f32),
         c4d = Tensor::zeros({4}, DType::f32), c4e = Tensor::zeros({4}, DType::f32),
         c4f = Tensor::zeros({4}, DType::f32);
  Tensor c5 = Tensor::zeros({5}, DType::f32);
  Tensor c4_half = Tensor::zeros({4}, DType::f16);
  Tensor y_half = Tensor::zeros({2, 3, 3, 4}, DType::f16);
  EXPECT_THROW(
      {
        try {
          batch_norm_forward_train(p, x, c5, c4b, c4c, c4d, y, c4e, c4f);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("batch_norm_forward_train: gamma has shape [5], expected [4]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(batch_norm_forward_train(p, x, c4, c4_half, c4c, c4d, y, c4e, c4f), Error);  // f16 beta
  EXPECT_THROW(batch_norm_forward_train(p, x, c4, c4b, c4c, c4d, y_half, c4e, c4f), Error);  // mixed dtypes
  EXPECT_THROW(batch_norm_forward_eval(p, x, c4, c4b, c4c, c4d, c4), Error);                 // y wrong shape
  EXPECT_THROW(batch_norm_backward(p, x, y_half, c4, c4b, c4c, c4d, y, c4e, c4f), Error);    // dy wrong dtype
  EXPECT_THROW(batch_norm_backward_eval(p, x, y, c4, c4b, c5, c4d, y, c4e, c4f), Error);     // running_mean [5]
  // One value per channel cannot be normalised in training (PyTorch refuses it as well).
  Tensor single = Tensor::zeros({1, 1, 1, 4}, DType::f32);
  Tensor single_y = Tensor::zeros({1, 1, 1, 4}, DType::f32);
  EXPECT_THROW(batch_norm_forward_train(p, single, c4, c4b, c4c, c4d, single_y, c4e, c4f), Error);
  Tensor rank1 = Tensor::zeros({4}, DType::f32);
  EXPECT_THROW(batch_norm_forward_eval(p, rank1, c4, c4b, c4c, c4d, rank1), Error);
  Tensor integers = Tensor::zeros({2, 3, 3, 4}, DType::i32);
  EXPECT_THROW(batch_norm_forward_eval(p, integers, c4, c4b, c4c, c4d, integers), Error);
  BatchNormParams bad_momentum;
  bad_momentum.momentum = 0.99 + 1;
  EXPECT_THROW(batch_norm_forward_train(bad_momentum, x, c4, c4b, c4c, c4d, y, c4e, c4f), Error);
}

}  // namespace
}  // namespace sg
