// Batch norm (+ fused activation): a case table (tests/support/op_harness.h) run on the fast CPU
// path and CUDA against the reference, finite differences on the double reference, statistics
// that stay stable for far-off values, PyTorch golden values (training and evaluation, running
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
// `expected`: the reference's outputs (training: saved_mean and saved_invstd at 6 and 7).
std::vector<bool> dx_at_kinks(const OpInputs& in, const OpOutputs& expected, const BatchNormParams& p, bool training) {
  const Tensor& x_t = in.tensors[0];
  std::vector<bool> skip(size_t(x_t.numel()), false);
  if (p.activation != Activation::relu && p.activation != Activation::relu6) return skip;
  const int64_t C = x_t.dim(-1);
  const std::vector<float> x = x_t.to_floats(), gamma = in.tensors[2].to_floats(), beta = in.tensors[3].to_floats();
  std::vector<float> mean, invstd;
  if (training) {
    mean = expected.at(6).to_floats();
    invstd = expected.at(7).to_floats();
  } else {
    mean = in.tensors[4].to_floats();
    for (float v : in.tensors[5].to_floats()) invstd.push_back(float(1.0 / std::sqrt(double(v) + p.eps)));
  }
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % size_t(C);
    const double z = double(gamma[c]) * (double(x[i]) - mean[c]) * invstd[c] + beta[c];
    skip[i] = std::fabs(z) < 1e-4 || (p.activation == Activation::relu6 && std::fabs(z - 6.0) < 1e-4);
  }
  return skip;
}

// ---- The case table ----------------------------------------------------------------------------
// Inputs: x, dy (the storage dtype), gamma, beta, running_mean, running_var (f32). Outputs: y, dx,
// dgamma, dbeta, running_mean, running_var, and in training saved_mean and saved_invstd.
// Training runs forward then backward with the saved statistics; evaluation the eval pair.

OpCase batch_norm_case(DType dtype, const Shape& shape, Activation act, bool training, bool cuda_only) {
  const int64_t C = shape[-1], M = shape.numel() / C;
  BatchNormParams p;
  p.activation = act;
  p.momentum = 0.3;
  OpCase k;
  k.op = std::string("batch_norm ") + (training ? "train " : "eval ") + std::string(activation_name(act));
  k.description = testing::describe(dtype, shape);
  k.cuda_only = cuda_only;
  // The per-channel statistics and parameter gradients are f32 sums over the M rows, against the
  // reference's double sums. In evaluation the running statistics are only read: bit for bit.
  const testing::OutputCheck channel_sum{.name = "", .summed_terms = double(M)};
  auto sum_named = [&](const char* name) {
    testing::OutputCheck check = channel_sum;
    check.name = name;
    return check;
  };
  k.outputs = {{"y"},
               {.name = "dx",
                .not_compared = [=](const OpInputs& in, const OpOutputs& e) { return dx_at_kinks(in, e, p, training); }},
               sum_named("dgamma"),
               sum_named("dbeta")};
  if (training) {
    for (const char* name : {"running_mean", "running_var", "saved_mean", "saved_invstd"})
      k.outputs.push_back(sum_named(name));
  } else {
    k.outputs.push_back({.name = "running_mean", .exact = true});
    k.outputs.push_back({.name = "running_var", .exact = true});
  }
  k.make_inputs = [=](Rng& rng) {
    const BnCase c = random_case(rng, shape, dtype);
    return OpInputs({c.x, c.dy, c.gamma, c.beta, c.running_mean, c.running_var});
  };
  k.reference = [=](const OpInputs& in) {
    const BnCase c{in.tensors[0], in.tensors[1], in.tensors[2], in.tensors[3], in.tensors[4], in.tensors[5]};
    const BnResult r = reference(c, p, training);
    OpOutputs out{r.y, r.dx, r.dgamma, r.dbeta, r.running_mean, r.running_var};
    if (training) {
      out.push_back(r.saved_mean);
      out.push_back(r.saved_invstd);
    }
    return out;
  };
  k.run = [=](const OpInputs& in, OpOutputs& o) {
    const Tensor &x = in.tensors[0], &dy = in.tensors[1], &gamma = in.tensors[2], &beta = in.tensors[3];
    o[4].copy_from(in.tensors[4]);  // the running statistics are updated in place
    o[5].copy_from(in.tensors[5]);
    if (training) {
      batch_norm_forward_train(p, x, gamma, beta, o[4], o[5], o[0], o[6], o[7]);
      batch_norm_backward(p, x, dy, gamma, beta, o[6], o[7], o[1], o[2], o[3]);
    } else {
      batch_norm_forward_eval(p, x, gamma, beta, o[4], o[5], o[0]);
      batch_norm_backward_eval(p, x, dy, gamma, beta, o[4], o[5], o[1], o[2], o[3]);
    }
  };
  // Forward reads x and writes y, backward reads x and dy and writes dx (the per-channel vectors
  // are negligible); about 10 flops an element each way before the activation.
  k.bytes = double(5 * shape.numel() * int64_t(dtype_size(dtype)));
  k.flops = double(20 * shape.numel());
  return k;
}

std::vector<OpCase> batch_norm_cases() {
  const Shape shapes[] = {{1, 1, 1, 5},    {3, 1, 1, 8},   {1, 3, 3, 13}, {3, 7, 7, 3},
                          {1, 17, 17, 24}, {3, 33, 33, 5}, {3, 7, 5, 6},  {2, 17, 3, 37}};
  // Many CUDA blocks per channel column, wide channel vectors, and the size of the ReLU6 kink case.
  const Shape cuda_shapes[] = {{4, 28, 28, 96}, {2, 9, 9, 1280}, {32, 56, 56, 16}};
  std::vector<OpCase> cases;
  for (DType dtype : kFloatTypes)
    for (Activation act : kFused)
      for (bool training : {true, false}) {
        // One value per channel cannot be normalised in training (the op refuses it).
        for (const Shape& shape : shapes)
          if (!training || shape.numel() / shape[-1] >= 2) cases.push_back(batch_norm_case(dtype, shape, act, training, false));
        for (const Shape& shape : cuda_shapes) cases.push_back(batch_norm_case(dtype, shape, act, training, true));
      }
  return cases;
}
[[maybe_unused]] const bool kRegistered = testing::register_op_tests("BatchNorm", "", batch_norm_cases, {.every_cpu_isa = true});

// ---- Gradient mode: the double reference backward against finite differences ------------------
// Differentiable inputs x [M, C], gamma [C], beta [C]; training uses the batch statistics (with
// fresh running statistics each call), evaluation fixed running statistics drawn with the case.

GradientCase batch_norm_gradient_case(Activation act, bool training) {
  const int64_t M = training ? 2 * 3 * 2 : 7, C = training ? 4 : 3;
  const double eps = training ? 1e-3 : 1e-5, momentum = 0.1;
  GradientCase k;
  k.op = std::string("batch_norm ") + (training ? "train " : "eval ") + std::string(activation_name(act));
  k.description = "x [" + std::to_string(M) + ", " + std::to_string(C) + "]";
  k.input_names = {"x", "gamma", "beta"};
  k.make_inputs = [=](Rng& rng) {
    Doubles in{testing::random_doubles(rng, size_t(M * C), -2, 2), testing::random_doubles(rng, size_t(C), -2, 2),
               testing::random_doubles(rng, size_t(C), -2, 2)};
    if (!training) {  // constants after the differentiable inputs: running mean and variance
      in.push_back(testing::random_doubles(rng, size_t(C), -0.5, 0.5));
      in.push_back(testing::random_doubles(rng, size_t(C), 0.5, 2.0));
    }
    return in;
  };
  k.forward = [=](const Doubles& in) {
    std::vector<double> y(size_t(M * C));
    if (training) {
      std::vector<double> rm(static_cast<size_t>(C), 0.0), rv(static_cast<size_t>(C), 1.0), sm(static_cast<size_t>(C)),
          si(static_cast<size_t>(C));
      cpu::ref::batch_norm_forward_train(in[0].data(), in[1].data(), in[2].data(), rm.data(), rv.data(), y.data(),
                                         sm.data(), si.data(), M, C, eps, momentum, act);
    } else {
      cpu::ref::batch_norm_forward_eval(in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(),
                                        y.data(), M, C, eps, act);
    }
    return y;
  };
  k.backward = [=](const Doubles& in, const std::vector<double>& dy) {
    Doubles g{std::vector<double>(in[0].size()), std::vector<double>(size_t(C)), std::vector<double>(size_t(C))};
    std::vector<double> mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
    if (training) {
      std::vector<double> y(static_cast<size_t>(M * C)), rm(static_cast<size_t>(C), 0.0), rv(static_cast<size_t>(C), 1.0);
      cpu::ref::batch_norm_forward_train(in[0].data(), in[1].data(), in[2].data(), rm.data(), rv.data(), y.data(),
                                         mean.data(), invstd.data(), M, C, eps, momentum, act);
    } else {
      mean = in[3];
      for (int64_t c = 0; c < C; ++c) invstd[size_t(c)] = 1.0 / std::sqrt(in[4][size_t(c)] + eps);
    }
    cpu::ref::batch_norm_backward(in[0].data(), dy.data(), in[1].data(), in[2].data(), mean.data(), invstd.data(),
                                  training, g[0].data(), g[1].data(), g[2].data(), M, C, act);
    return g;
  };
  return k;
}

[[maybe_unused]] const bool kTrainGradientsRegistered =
    testing::register_gradient_tests("BatchNorm", "TrainBackwardMatchesFiniteDifferences", [] {
      std::vector<GradientCase> cases;
      for (Activation act : {Activation::identity, Activation::sigmoid, Activation::swish, Activation::mish})
        cases.push_back(batch_norm_gradient_case(act, true));
      return cases;
    });
[[maybe_unused]] const bool kEvalGradientsRegistered =
    testing::register_gradient_tests("BatchNorm", "EvalBackwardMatchesFiniteDifferences", [] {
      std::vector<GradientCase> cases;
      for (Activation act : {Activation::identity, Activation::swish, Activation::mish})
        cases.push_back(batch_norm_gradient_case(act, false));
      return cases;
    });

// ---- Checks of their own ---------------------------------------------------------------------

// Per-channel statistics are f32 sums over M values whatever the storage type; against the
// double-summed reference they differ by float rounding only.
const Tolerance kStatTol{1e-5, 1e-4};

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
