// Optimizers: fast CPU and CUDA vs the reference, PyTorch golden steps (SGD with momentum and
// Nesterov, AdamW, clip_grad_norm_), inf/NaN detection with unscaling, the loss-scale rule,
// and bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/optimizer_ref.h"
#include "kernels/optimizer.h"
#include "tests/support/testing.h"

namespace sg {
namespace {

using testing::all_close;
using testing::Rng;

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};
const int64_t kSizes[] = {1, 3, 7, 17, 33, 1000, 4099};

// The same update formula in f32: only FMA contraction (GPU) can move the last bit.
constexpr testing::Tolerance kUpdateTolerance{1e-6, 1e-5};

const SgdParams kSgdConfigs[] = {
    {0.1f, 0.0f, 0.0f, 0.0f, false},   // plain
    {0.1f, 0.0f, 0.0f, 1e-2f, false},  // weight decay only
    {0.05f, 0.9f, 0.0f, 1e-2f, false}, // momentum
    {0.05f, 0.9f, 0.0f, 1e-2f, true},  // Nesterov
    {0.05f, 0.9f, 0.1f, 0.0f, false},  // dampening
};

std::vector<float> floats(const Tensor& t) { return t.to_floats(); }

// Reference SGD over three steps on host copies; the device tensors step through the API.
void check_sgd(Rng& rng, Device device, DType grad_dtype, int64_t n, const SgdParams& s) {
  SCOPED_TRACE(::testing::Message() << "sgd momentum " << s.momentum << " nesterov " << s.nesterov << " wd "
                                    << s.weight_decay << " dampening " << s.dampening << " grad "
                                    << dtype_name(grad_dtype) << " n=" << n << " on " << device.str());
  Tensor param = testing::random_tensor(rng, {n}, DType::f32);
  std::vector<float> ref_param = floats(param), ref_buf(static_cast<size_t>(n), 0.0f);
  Tensor param_d = param.to(device), buf_d = Tensor::empty({n}, DType::f32, device);
  testing::poison(buf_d);  // the first step must not read it
  for (int step = 1; step <= 3; ++step) {
    Tensor grad = testing::random_tensor(rng, {n}, grad_dtype);
    dispatch_floating(grad_dtype, "test", [&](auto tag) {
      using G = typename decltype(tag)::type;
      cpu::ref::sgd_step(s, ref_param.data(), grad.data_as<G>(), ref_buf.data(), step == 1, n);
    });
    sgd_step(s, param_d, grad.to(device), &buf_d, step == 1);
    EXPECT_TRUE(all_close(param_d, std::vector<double>(ref_param.begin(), ref_param.end()), kUpdateTolerance))
        << "step " << step;
    if (s.momentum != 0) {
      EXPECT_TRUE(all_close(buf_d, std::vector<double>(ref_buf.begin(), ref_buf.end()), kUpdateTolerance))
          << "step " << step;
    }
  }
}

void check_adamw(Rng& rng, Device device, DType grad_dtype, int64_t n) {
  SCOPED_TRACE(::testing::Message() << "adamw grad " << dtype_name(grad_dtype) << " n=" << n << " on "
                                    << device.str());
  const AdamWParams a{1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f};
  Tensor param = testing::random_tensor(rng, {n}, DType::f32);
  std::vector<float> ref_param = floats(param), ref_m(static_cast<size_t>(n), 0.0f),
                     ref_v(static_cast<size_t>(n), 0.0f);
  Tensor param_d = param.to(device), m = Tensor::zeros({n}, DType::f32, device), v = Tensor::zeros({n}, DType::f32, device);
  for (int step = 1; step <= 3; ++step) {
    Tensor grad = testing::random_tensor(rng, {n}, grad_dtype);
    dispatch_floating(grad_dtype, "test", [&](auto tag) {
      using G = typename decltype(tag)::type;
      cpu::ref::adamw_step(a, step, ref_param.data(), grad.data_as<G>(), ref_m.data(), ref_v.data(), n);
    });
    adamw_step(a, step, param_d, grad.to(device), m, v);
    EXPECT_TRUE(all_close(param_d, std::vector<double>(ref_param.begin(), ref_param.end()), kUpdateTolerance))
        << "step " << step;
    EXPECT_TRUE(all_close(m, std::vector<double>(ref_m.begin(), ref_m.end()), kUpdateTolerance)) << "step " << step;
    EXPECT_TRUE(all_close(v, std::vector<double>(ref_v.begin(), ref_v.end()), kUpdateTolerance)) << "step " << step;
  }
}

// clip_grad_norm over a list of tensors of one dtype, vs the reference; `max_norm` picks
// whether it clips.
void check_clip(Rng& rng, Device device, DType dtype, std::vector<int64_t> sizes, float max_norm) {
  SCOPED_TRACE(::testing::Message() << "clip " << dtype_name(dtype) << " max_norm " << max_norm << " tensors "
                                    << sizes.size() << " on " << device.str());
  std::vector<Tensor> host, dev;
  for (int64_t n : sizes) {
    host.push_back(testing::random_tensor(rng, {n}, dtype));
    dev.push_back(host.back().to(device));
  }
  std::vector<Tensor*> dev_ptrs;
  for (Tensor& t : dev) dev_ptrs.push_back(&t);
  double ref_norm = 0;
  dispatch_floating(dtype, "test", [&](auto tag) {
    using G = typename decltype(tag)::type;
    std::vector<G*> ptrs;
    for (Tensor& t : host) ptrs.push_back(t.data_as<G>());
    ref_norm = cpu::ref::clip_grad_norm(ptrs, sizes, double(max_norm));
  });
  const float norm = clip_grad_norm(dev_ptrs, max_norm);
  // Sums of squares in another order (f32 partials on the GPU).
  EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm + 1e-6);
  for (size_t i = 0; i < host.size(); ++i) EXPECT_TRUE(all_close(dev[i], host[i], testing::tolerance_for(dtype)));
}

// all_close, except that an inf must meet the same inf (all_close sees inf - inf as NaN).
::testing::AssertionResult close_with_infinities(const Tensor& actual, const Tensor& expected, testing::Tolerance tol) {
  std::vector<double> a = testing::to_doubles(actual), e = testing::to_doubles(expected);
  if (a.size() != e.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " and " << e.size();
  for (size_t i = 0; i < e.size(); ++i)
    if (std::isinf(e[i])) {
      if (a[i] != e[i]) return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << e[i];
      a[i] = e[i] = 0;
    }
  return all_close(a, e, tol);
}

void check_unscale(Rng& rng, Device device, DType dtype) {
  SCOPED_TRACE(::testing::Message() << "unscale " << dtype_name(dtype) << " on " << device.str());
  const float inv_scale = 1.0f / 1024.0f;
  const float specials[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (float special : specials) {
    std::vector<Tensor> host;
    for (int64_t n : {5, 4099, 33}) host.push_back(testing::random_tensor(rng, {n}, dtype, -2000, 2000));
    // Plant the special value in one tensor at a random place (the others stay finite).
    Tensor& target = host[size_t(rng.integer(0, 2))];
    std::vector<float> v = target.to_floats();
    v[size_t(rng.integer(0, int64_t(v.size()) - 1))] = special;
    target = Tensor::from_floats(v, target.shape(), dtype);
    std::vector<Tensor> dev;
    std::vector<Tensor*> ptrs;
    for (Tensor& t : host) dev.push_back(t.to(device));
    for (Tensor& t : dev) ptrs.push_back(&t);
    Tensor found = Tensor::zeros({1}, DType::f32, device);
    non_finite_check_and_unscale(ptrs, found, inv_scale);
    EXPECT_EQ(found.to_floats()[0], 1.0f) << "planted " << special;
    for (size_t i = 0; i < host.size(); ++i) {
      dispatch_floating(dtype, "test", [&](auto tag) {
        using G = typename decltype(tag)::type;
        cpu::ref::non_finite_check_and_unscale(host[i].data_as<G>(), host[i].numel(), inv_scale);
      });
      EXPECT_TRUE(close_with_infinities(dev[i], host[i], testing::tolerance_for(dtype)));
    }
  }
  // All finite: found_inf keeps its value, 0 stays 0 and 1 stays 1 (never cleared).
  for (float before : {0.0f, 1.0f}) {
    Tensor g = testing::random_tensor(rng, {100}, dtype).to(device);
    Tensor found = Tensor::from_floats({before}, {1}).to(device);
    Tensor* ptr = &g;
    non_finite_check_and_unscale(std::span<Tensor* const>(&ptr, 1), found, inv_scale);
    EXPECT_EQ(found.to_floats()[0], before);
  }
}

TEST(Optimizer, FastCpuMatchesReference) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    for (int64_t n : kSizes) {
      for (const SgdParams& s : kSgdConfigs) check_sgd(rng, Device::cpu(), dtype, n, s);
      check_adamw(rng, Device::cpu(), dtype, n);
    }
    check_clip(rng, Device::cpu(), dtype, {1, 7, 33, 4099}, 1.0f);
    check_clip(rng, Device::cpu(), dtype, {3, 17}, 1e4f);
    check_unscale(rng, Device::cpu(), dtype);
  }
}

TEST(Optimizer, CudaMatchesReference) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  for (DType dtype : kFloatTypes) {
    for (int64_t n : kSizes) {
      for (const SgdParams& s : kSgdConfigs) check_sgd(rng, Device::cuda(0), dtype, n, s);
      check_adamw(rng, Device::cuda(0), dtype, n);
    }
    check_sgd(rng, Device::cuda(0), dtype, (1 << 20) + 5, kSgdConfigs[3]);
    check_adamw(rng, Device::cuda(0), dtype, (1 << 20) + 5);
    check_clip(rng, Device::cuda(0), dtype, {1, 7, 33, 4099, 1 << 20}, 1.0f);
    check_clip(rng, Device::cuda(0), dtype, {3, 17}, 1e4f);
    check_unscale(rng, Device::cuda(0), dtype);
  }
}

TEST(Optimizer, CudaClipIsDeterministic) {
  SG_REQUIRE_CUDA();
  Rng rng;
  Tensor g = testing::random_tensor(rng, {3 << 20}, DType::f32).to(Device::cuda(0));
  Tensor* ptr = &g;
  const float first = clip_grad_norm(std::span<Tensor* const>(&ptr, 1), 1e9f);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(clip_grad_norm(std::span<Tensor* const>(&ptr, 1), 1e9f), first);
}

// ---- PyTorch ----------------------------------------------------------------------------------

// Three steps of each optimizer from the same start; PyTorch runs in f32 too.
TEST(Optimizer, SgdMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  const std::pair<const char*, SgdParams> configs[] = {{"sgd_momentum", {0.1f, 0.9f, 0.0f, 1e-2f, false}},
                                                       {"sgd_nesterov", {0.1f, 0.9f, 0.0f, 1e-2f, true}},
                                                       {"sgd_plain", {0.1f, 0.0f, 0.0f, 1e-2f, false}}};
  for (const auto& [name, s] : configs) {
    SCOPED_TRACE(name);
    Tensor param = golden.tensor("param_0"), buf = Tensor::empty(param.shape(), DType::f32);
    for (int step = 1; step <= 3; ++step) {
      sgd_step(s, param, golden.tensor("grad_" + std::to_string(step)), &buf, step == 1);
      EXPECT_TRUE(all_close(param, golden.doubles(std::string(name) + "/param_" + std::to_string(step)),
                            {1e-6, 1e-5}))
          << "step " << step;
    }
  }
}

TEST(Optimizer, AdamWMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  const AdamWParams a{1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f};
  Tensor param = golden.tensor("param_0");
  Tensor m = Tensor::zeros(param.shape(), DType::f32), v = Tensor::zeros(param.shape(), DType::f32);
  for (int step = 1; step <= 3; ++step) {
    adamw_step(a, step, param, golden.tensor("grad_" + std::to_string(step)), m, v);
    EXPECT_TRUE(all_close(param, golden.doubles("adamw/param_" + std::to_string(step)), {1e-6, 1e-5}))
        << "step " << step;
  }
}

TEST(Optimizer, ClipGradNormMatchesPyTorchGolden) {
  const testing::GoldenFile golden("optimizer");
  for (int max_norm : {1, 100}) {
    SCOPED_TRACE(max_norm);
    const std::string key = "clip/max_norm_" + std::to_string(max_norm);
    Tensor a = golden.tensor("clip/grad_a"), b = golden.tensor("clip/grad_b");
    Tensor* grads[] = {&a, &b};
    const float norm = clip_grad_norm(grads, float(max_norm));
    EXPECT_NEAR(norm, golden.scalar(key + "/total_norm"), 1e-5);
    EXPECT_TRUE(all_close(a, golden.doubles(key + "/grad_a"), {1e-6, 1e-5}));
    EXPECT_TRUE(all_close(b, golden.doubles(key + "/grad_b"), {1e-6, 1e-5}));
  }
}

// ---- loss scaling ----------------------------------------------------------------------------

TEST(Optimizer, LossScaleRule) {
  const LossScaleParams p{1024.0f, 2.0f, 0.5f, 3};
  LossScaleState s{p.init_scale, 0};
  EXPECT_TRUE(update_loss_scale(s, false, p));
  EXPECT_TRUE(update_loss_scale(s, false, p));
  EXPECT_EQ(s.scale, 1024.0f);
  EXPECT_EQ(s.growth_tracker, 2);
  EXPECT_FALSE(update_loss_scale(s, true, p));  // inf: halve, restart the count
  EXPECT_EQ(s.scale, 512.0f);
  EXPECT_EQ(s.growth_tracker, 0);
  for (int i = 0; i < 2; ++i) update_loss_scale(s, false, p);
  EXPECT_EQ(s.scale, 512.0f);
  update_loss_scale(s, false, p);  // the third good step in a row doubles
  EXPECT_EQ(s.scale, 1024.0f);
  EXPECT_EQ(s.growth_tracker, 0);
  LossScaleState huge{std::numeric_limits<float>::max(), 2};
  update_loss_scale(huge, false, p);  // growth that would overflow is skipped
  EXPECT_EQ(huge.scale, std::numeric_limits<float>::max());
  EXPECT_EQ(huge.growth_tracker, 0);
  EXPECT_THROW(update_loss_scale(s, false, {1024.0f, 2.0f, 0.5f, 0}), Error);
}

// ---- bad arguments ------------------------------------------------------------------------------

TEST(Optimizer, RejectsBadArguments) {
  Tensor p = Tensor::zeros({4, 3}, DType::f32), g = Tensor::zeros({4, 3}, DType::f32);
  Tensor g_bad = Tensor::zeros({3, 4}, DType::f32), g_int = Tensor::zeros({4, 3}, DType::i32);
  Tensor buf = Tensor::zeros({4, 3}, DType::f32), buf_f16 = Tensor::zeros({4, 3}, DType::f16);
  Tensor p_f16 = Tensor::zeros({4, 3}, DType::f16);
  const SgdParams momentum{0.1f, 0.9f, 0.0f, 0.0f, false};
  EXPECT_THROW(
      {
        try {
          sgd_step(momentum, p, g_bad, &buf, true);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("sgd_step: grad has shape [3, 4], expected [4, 3]"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(
      {
        try {
          sgd_step(momentum, p, g, nullptr, true);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("sgd_step: momentum 0.9 needs a momentum_buffer"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(sgd_step(momentum, p, g_int, &buf, true), Error);
  EXPECT_THROW(sgd_step(momentum, p, g, &buf_f16, true), Error);
  EXPECT_THROW(sgd_step(momentum, p_f16, g, &buf, true), Error);
  EXPECT_THROW(sgd_step({0.1f, 0.0f, 0.0f, 0.0f, true}, p, g, &buf, true), Error);  // Nesterov without momentum
  EXPECT_NO_THROW(sgd_step({0.1f, 0.0f, 0.0f, 0.0f, false}, p, g, nullptr, true));

  Tensor m = Tensor::zeros({4, 3}, DType::f32), v = Tensor::zeros({4, 3}, DType::f32);
  Tensor v_bad = Tensor::zeros({12}, DType::f32);
  EXPECT_THROW(
      {
        try {
          adamw_step({}, 0, p, g, m, v);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("adamw_step: step is 0, expected >= 1"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(adamw_step({}, 1, p, g, m, v_bad), Error);
  EXPECT_THROW(adamw_step({1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f}, 1, p, g, m, v), Error);

  Tensor* none[] = {nullptr};
  Tensor* ints[] = {&g_int};
  Tensor* ok[] = {&g};
  EXPECT_THROW(clip_grad_norm(none, 1.0f), Error);
  EXPECT_THROW(clip_grad_norm(ints, 1.0f), Error);
  EXPECT_THROW(clip_grad_norm(ok, -1.0f), Error);
  Tensor found = Tensor::zeros({1}, DType::f32), found_bad = Tensor::zeros({2}, DType::f32);
  EXPECT_THROW(
      {
        try {
          non_finite_check_and_unscale(ok, found_bad, 1.0f);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("non_finite_check_and_unscale: found_inf has shape [2], expected [1]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  if (cuda_available()) {
    Tensor g_gpu = g.to(Device::cuda(0));
    Tensor* mixed[] = {&g, &g_gpu};
    EXPECT_THROW(clip_grad_norm(mixed, 1.0f), Error);
    // (This passed the CPU gradients until the test first ran with a CUDA device, on the emulated one.)
    Tensor* on_gpu[] = {&g_gpu};
    EXPECT_THROW(non_finite_check_and_unscale(on_gpu, found, 1.0f), Error) << "found_inf on the CPU, grads on the GPU";
    EXPECT_THROW(sgd_step(momentum, p, g_gpu, &buf, true), Error);
  }
}

}  // namespace
}  // namespace sg
