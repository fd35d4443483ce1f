// Optimizers over Parameters (train/optimizer.h) and gradient accumulation: PyTorch golden steps
// with param groups exempting biases and norms from weight decay, identity with the per-tensor
// kernels, zero_grad, clipping, accumulation over micro-batches equal to one big batch, state
// save/restore by name, CUDA vs CPU, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/optimizer.h"
#include "nn/parameter.h"
#include "tests/support/testing.h"
#include "train/gradient_accumulation.h"
#include "train/optimizer.h"

namespace sg::train {
namespace {

using testing::all_close;
using testing::Rng;

// Same f32 update formulas as PyTorch's; only the order of float operations can differ.
constexpr testing::Tolerance kStepTolerance{1e-6, 1e-5};
constexpr testing::Tolerance kExact{0.0, 0.0};

// A tiny network's parameters: [3, 4] weight, [3] bias, [4] norm gamma (the last two exempt).
struct TinyNet {
  std::vector<std::unique_ptr<nn::Parameter>> owned;

  nn::Parameter& add(std::string name, Tensor value, bool is_bias_or_norm) {
    Tensor grad = Tensor::zeros(value.shape(), DType::f32, value.device());
    owned.push_back(std::make_unique<nn::Parameter>(nn::Parameter{std::move(name), value, grad, is_bias_or_norm}));
    return *owned.back();
  }
  std::vector<nn::Parameter*> params() const {
    std::vector<nn::Parameter*> out;
    for (const auto& p : owned) out.push_back(p.get());
    return out;
  }
  // A deep copy (values and gradients), optionally on another device.
  TinyNet clone(Device device = Device::cpu()) const {
    TinyNet copy;
    for (const auto& p : owned) copy.add(p->name, p->value.to(device), p->is_bias_or_norm).grad.copy_from(p->grad);
    return copy;
  }
};

TinyNet random_net(Rng& rng) {
  TinyNet net;
  net.add("fc.weight", testing::random_tensor(rng, {3, 4}), false);
  net.add("fc.bias", testing::random_tensor(rng, {3}), true);
  net.add("bn.weight", testing::random_tensor(rng, {4}, DType::f32, 0.5f, 1.5f), true);
  return net;
}

void random_grads(Rng& rng, TinyNet& net) {
  for (auto& p : net.owned) p->grad.copy_from(testing::random_tensor(rng, p->value.shape()));
}

std::vector<nn::Buffer> deep_copy(const std::vector<nn::Buffer>& state) {
  std::vector<nn::Buffer> out;
  for (const nn::Buffer& b : state) out.push_back({b.name, b.value.to(Device::cpu())});
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- PyTorch --------------------------------------------------------------------------------

// tests/golden/golden_schedule.py: 4 steps over param groups {weight} (wd 0.05) and
// {bias, norm gamma} (wd 0), the learning rate set before each step.
void check_against_golden(const char* name, Optimizer& opt, TinyNet& net, const testing::GoldenFile& golden) {
  const float lrs[] = {0.01f, 0.02f, 0.015f, 0.005f};
  for (int step = 1; step <= 4; ++step) {
    for (auto& p : net.owned) p->grad.copy_from(golden.tensor("grad_" + std::to_string(step) + "/" + p->name));
    opt.set_lr(lrs[step - 1]);
    opt.step();
    for (auto& p : net.owned) {
      EXPECT_TRUE(all_close(p->value, golden.doubles(std::string(name) + "/step_" + std::to_string(step) + "/" +
                                                     p->name),
                            kStepTolerance))
          << p->name << " step " << step;
    }
  }
  EXPECT_EQ(opt.steps_taken(), 4);
  const std::vector<nn::Buffer> state = opt.state();
  EXPECT_EQ(state.size(), golden.has(std::string(name) + "/state/fc.weight/exp_avg") ? 6u : 3u);
  for (const nn::Buffer& b : state) {
    SCOPED_TRACE(b.name);
    EXPECT_TRUE(all_close(b.value, golden.doubles(std::string(name) + "/state/" + b.name), kStepTolerance));
  }
}

TinyNet golden_net(const testing::GoldenFile& golden) {
  TinyNet net;
  net.add("fc.weight", golden.tensor("param_0/fc.weight"), false);
  net.add("fc.bias", golden.tensor("param_0/fc.bias"), true);
  net.add("bn.weight", golden.tensor("param_0/bn.weight"), true);
  return net;
}

TEST(TrainOptimizer, AdamWWithBiasAndNormExemptMatchesPyTorchGolden) {
  const testing::GoldenFile golden("schedule");
  TinyNet net = golden_net(golden);
  AdamW opt(net.params(), AdamWOptions{0.01f, 0.9f, 0.99f, 1e-8f, 0.05f, true});
  check_against_golden("adamw", opt, net, golden);
}

TEST(TrainOptimizer, SgdNesterovWithBiasAndNormExemptMatchesPyTorchGolden) {
  const testing::GoldenFile golden("schedule");
  TinyNet net = golden_net(golden);
  Sgd opt(net.params(), SgdOptions{0.01f, 0.9f, 0.0f, 0.05f, true, true});
  check_against_golden("sgd_nesterov", opt, net, golden);
}

// ---- the same updates as the per-tensor kernels ------------------------------------------------

TEST(TrainOptimizer, StepsEqualThePerTensorKernels) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (bool exempt : {false, true}) {
    SCOPED_TRACE(exempt ? "bias and norm exempt from weight decay" : "weight decay everywhere");
    TinyNet net = random_net(rng);
    TinyNet by_kernel_sgd = net.clone(), by_kernel_adamw = net.clone(), net_adamw = net.clone();
    Sgd sgd(net.params(), SgdOptions{0.05f, 0.9f, 0.0f, 0.01f, false, exempt});
    AdamW adamw(net_adamw.params(), AdamWOptions{2e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, exempt});
    std::vector<Tensor> buffers, exp_avg, exp_avg_sq;
    for (auto& p : net.owned) {
      buffers.push_back(Tensor::zeros(p->value.shape(), DType::f32));
      exp_avg.push_back(Tensor::zeros(p->value.shape(), DType::f32));
      exp_avg_sq.push_back(Tensor::zeros(p->value.shape(), DType::f32));
    }
    for (int step = 1; step <= 3; ++step) {
      random_grads(rng, net);
      const float lr_factor = 1.0f / float(step);  // a schedule changing the rate
      sgd.set_lr(0.05f * lr_factor);
      adamw.set_lr(2e-3f * lr_factor);
      for (size_t i = 0; i < net.owned.size(); ++i) {
        const nn::Parameter& p = *net.owned[i];
        net_adamw.owned[i]->grad.copy_from(p.grad);
        const float sgd_decay = exempt && p.is_bias_or_norm ? 0.0f : 0.01f;
        const float adamw_decay = exempt && p.is_bias_or_norm ? 0.0f : 0.1f;
        sgd_step({0.05f * lr_factor, 0.9f, 0.0f, sgd_decay, false}, by_kernel_sgd.owned[i]->value, p.grad,
                 &buffers[i], step == 1);
        adamw_step({2e-3f * lr_factor, 0.9f, 0.999f, 1e-8f, adamw_decay}, step, by_kernel_adamw.owned[i]->value,
                   p.grad, exp_avg[i], exp_avg_sq[i]);
      }
      sgd.step();
      adamw.step();
      for (size_t i = 0; i < net.owned.size(); ++i) {
        SCOPED_TRACE(net.owned[i]->name + " step " + std::to_string(step));
        EXPECT_TRUE(all_close(net.owned[i]->value, by_kernel_sgd.owned[i]->value, kExact));
        EXPECT_TRUE(all_close(net_adamw.owned[i]->value, by_kernel_adamw.owned[i]->value, kExact));
      }
    }
    // The state by name is the kernels' state.
    std::map<std::string, Tensor> sgd_state, adamw_state;
    for (const nn::Buffer& b : sgd.state()) sgd_state[b.name] = b.value;
    for (const nn::Buffer& b : adamw.state()) adamw_state[b.name] = b.value;
    ASSERT_EQ(sgd_state.size(), 3u);
    ASSERT_EQ(adamw_state.size(), 6u);
    for (size_t i = 0; i < net.owned.size(); ++i) {
      const std::string& name = net.owned[i]->name;
      EXPECT_TRUE(all_close(sgd_state.at(name + "/momentum_buffer"), buffers[i], kExact)) << name;
      EXPECT_TRUE(all_close(adamw_state.at(name + "/exp_avg"), exp_avg[i], kExact)) << name;
      EXPECT_TRUE(all_close(adamw_state.at(name + "/exp_avg_sq"), exp_avg_sq[i], kExact)) << name;
    }
  }
}

TEST(TrainOptimizer, SgdWithoutMomentumHasNoState) {
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net = random_net(rng);
  Sgd sgd(net.params(), SgdOptions{0.1f, 0.0f, 0.0f, 0.0f, false, false});
  EXPECT_TRUE(sgd.state().empty());
  random_grads(rng, net);
  const std::vector<float> before = net.owned[0]->value.to_floats(), grad = net.owned[0]->grad.to_floats();
  sgd.step();
  const std::vector<float> after = net.owned[0]->value.to_floats();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i] - 0.1f * grad[i]);
}

TEST(TrainOptimizer, ZeroGradClearsEveryGradientAndKeepsValues) {
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net = random_net(rng);
  random_grads(rng, net);
  const TinyNet before = net.clone();
  AdamW opt(net.params(), AdamWOptions{});
  opt.zero_grad();
  for (size_t i = 0; i < net.owned.size(); ++i) {
    EXPECT_TRUE(all_close(net.owned[i]->grad, std::vector<double>(size_t(net.owned[i]->grad.numel()), 0.0), kExact));
    EXPECT_TRUE(all_close(net.owned[i]->value, before.owned[i]->value, kExact));
  }
  EXPECT_EQ(opt.steps_taken(), 0);
}

TEST(TrainOptimizer, ClipGradNormScalesEveryGradientByTheGlobalNorm) {
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net = random_net(rng);
  random_grads(rng, net);
  double sum_sq = 0;
  for (auto& p : net.owned)
    for (float g : p->grad.to_floats()) sum_sq += double(g) * g;
  const double total = std::sqrt(sum_sq);
  const TinyNet before = net.clone();
  Sgd opt(net.params(), SgdOptions{});
  const float max_norm = float(total / 4);
  EXPECT_NEAR(opt.clip_grad_norm(max_norm), total, 1e-5 * total);
  const double factor = max_norm / (total + 1e-6);
  for (size_t i = 0; i < net.owned.size(); ++i) {
    std::vector<double> expected;
    for (float g : before.owned[i]->grad.to_floats()) expected.push_back(g * factor);
    EXPECT_TRUE(all_close(net.owned[i]->grad, expected, kStepTolerance)) << net.owned[i]->name;
  }
  // Below the threshold nothing changes.
  const TinyNet clipped = net.clone();
  opt.clip_grad_norm(1e3f);
  for (size_t i = 0; i < net.owned.size(); ++i)
    EXPECT_TRUE(all_close(net.owned[i]->grad, clipped.owned[i]->grad, kExact));
}

// ---- gradient accumulation -------------------------------------------------------------------

// Least squares on a linear model: loss = mean over the batch of (w.x + b - y)^2 / 2, and its
// gradient ADDED into the parameters' gradients (as backward does).
struct Regression {
  std::vector<std::vector<float>> x;  // [samples][4]
  std::vector<float> y;               // [samples]

  void backward(TinyNet& net, size_t first, size_t count) const {
    const std::vector<float> w = net.owned[0]->value.to_floats(), b = net.owned[1]->value.to_floats();
    float* gw = net.owned[0]->grad.data_as<float>();
    float* gb = net.owned[1]->grad.data_as<float>();
    for (size_t i = first; i < first + count; ++i) {
      float prediction = b[0];
      for (size_t j = 0; j < 4; ++j) prediction += w[j] * x[i][j];
      const float residual = (prediction - y[i]) / float(count);
      for (size_t j = 0; j < 4; ++j) gw[j] += residual * x[i][j];
      gb[0] += residual;
    }
  }
};

TEST(GradientAccumulation, MicroBatchesGiveTheBigBatchStep) {
  Rng rng;
  SG_TRACE_SEED(rng);
  constexpr size_t kBatch = 8;
  Regression data;
  for (size_t i = 0; i < 3 * kBatch; ++i) {  // three optimizer steps' worth
    data.x.push_back({rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)});
    data.y.push_back(rng.uniform(-2, 2));
  }
  TinyNet start;
  start.add("w", testing::random_tensor(rng, {4}), false);
  start.add("b", testing::random_tensor(rng, {1}), true);

  for (const char* kind : {"sgd", "adamw"}) {
    OptimizerConfig config;
    config.name = kind;
    config.lr = 0.05f;
    config.momentum = 0.9f;
    config.exempt_bias_and_norm_from_weight_decay = true;
    TinyNet big = start.clone();
    auto big_opt = make_optimizer(config, big.params());
    for (size_t step = 0; step < 3; ++step) {
      big.owned[0]->grad.zero_();
      big.owned[1]->grad.zero_();
      data.backward(big, step * kBatch, kBatch);
      big_opt->step();
    }
    for (int k : {2, 4}) {
      SCOPED_TRACE(::testing::Message() << kind << " over " << k << " micro-batches");
      TinyNet small = start.clone();
      auto opt = make_optimizer(config, small.params());
      GradientAccumulation accumulation(k);
      const size_t micro = kBatch / size_t(k);
      int steps = 0;
      for (size_t m = 0; m < 3 * size_t(k); ++m) {
        data.backward(small, m * micro, micro);
        const bool step_now = accumulation.end_micro_batch(small.params());
        EXPECT_EQ(step_now, (m + 1) % size_t(k) == 0) << "micro-batch " << m;
        EXPECT_EQ(accumulation.position(), int((m + 1) % size_t(k)));
        if (step_now) {
          opt->step();
          opt->zero_grad();
          ++steps;
        }
      }
      EXPECT_EQ(steps, 3);
      for (size_t i = 0; i < 2; ++i)
        EXPECT_TRUE(all_close(small.owned[i]->value, big.owned[i]->value, kStepTolerance)) << small.owned[i]->name;
    }
  }
}

TEST(GradientAccumulation, OneMicroBatchPerStepLeavesGradientsAlone) {
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net = random_net(rng);
  random_grads(rng, net);
  const TinyNet before = net.clone();
  GradientAccumulation accumulation(1);
  EXPECT_TRUE(accumulation.end_micro_batch(net.params()));
  for (size_t i = 0; i < net.owned.size(); ++i)
    EXPECT_TRUE(all_close(net.owned[i]->grad, before.owned[i]->grad, kExact));
  EXPECT_THROW(GradientAccumulation(0), Error);
  GradientAccumulation four(4);
  four.set_position(3);
  EXPECT_TRUE(four.end_micro_batch(net.params()));  // a restored position finishes the step
  EXPECT_THROW(four.set_position(4), Error);
}

// ---- state save / restore ----------------------------------------------------------------------

TEST(TrainOptimizer, RestoredStateGivesIdenticalSteps) {
  Rng rng;
  SG_TRACE_SEED(rng);
  for (const char* kind : {"sgd", "adamw"}) {
    SCOPED_TRACE(kind);
    OptimizerConfig config;
    config.name = kind;
    config.lr = 0.01f;
    config.nesterov = true;
    TinyNet net = random_net(rng);
    auto opt = make_optimizer(config, net.params());
    for (int step = 0; step < 3; ++step) {
      random_grads(rng, net);
      opt->step();
    }
    // Save: values, state by name, step count.
    const TinyNet saved_net = net.clone();
    const std::vector<nn::Buffer> saved_state = deep_copy(opt->state());
    const int64_t saved_steps = opt->steps_taken();

    TinyNet resumed = saved_net.clone();
    auto resumed_opt = make_optimizer(config, resumed.params());
    resumed_opt->load_state(saved_state, saved_steps);
    EXPECT_EQ(resumed_opt->steps_taken(), 3);
    for (int step = 0; step < 2; ++step) {
      random_grads(rng, net);
      for (size_t i = 0; i < net.owned.size(); ++i) resumed.owned[i]->grad.copy_from(net.owned[i]->grad);
      opt->set_lr(0.02f);
      resumed_opt->set_lr(0.02f);
      opt->step();
      resumed_opt->step();
      for (size_t i = 0; i < net.owned.size(); ++i)
        EXPECT_TRUE(all_close(resumed.owned[i]->value, net.owned[i]->value, kExact)) << net.owned[i]->name;
    }
    // Without the state (a fresh optimizer) the steps differ: the test above can fail.
    TinyNet fresh = saved_net.clone();
    auto fresh_opt = make_optimizer(config, fresh.params());
    for (size_t i = 0; i < net.owned.size(); ++i) fresh.owned[i]->grad.copy_from(net.owned[i]->grad);
    fresh_opt->step();
    TinyNet resumed_once = saved_net.clone();
    auto resumed_once_opt = make_optimizer(config, resumed_once.params());
    resumed_once_opt->load_state(saved_state, saved_steps);
    for (size_t i = 0; i < net.owned.size(); ++i) resumed_once.owned[i]->grad.copy_from(net.owned[i]->grad);
    resumed_once_opt->step();
    EXPECT_FALSE(all_close(fresh.owned[0]->value, resumed_once.owned[0]->value, kExact));
  }
}

// ---- CUDA ------------------------------------------------------------------------------------

TEST(TrainOptimizer, CudaMatchesCpu) {
  SG_REQUIRE_CUDA();
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet cpu_net = random_net(rng);
  TinyNet gpu_net = cpu_net.clone(Device::cuda());
  AdamW cpu_opt(cpu_net.params(), AdamWOptions{1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, true});
  AdamW gpu_opt(gpu_net.params(), AdamWOptions{1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, true});
  for (const nn::Buffer& b : gpu_opt.state()) EXPECT_EQ(b.value.device(), Device::cuda()) << b.name;
  for (int step = 0; step < 3; ++step) {
    random_grads(rng, cpu_net);
    for (size_t i = 0; i < cpu_net.owned.size(); ++i) gpu_net.owned[i]->grad.copy_from(cpu_net.owned[i]->grad);
    EXPECT_NEAR(gpu_opt.clip_grad_norm(1.0f), cpu_opt.clip_grad_norm(1.0f), 1e-5);
    cpu_opt.step();
    gpu_opt.step();
  }
  for (size_t i = 0; i < cpu_net.owned.size(); ++i)
    EXPECT_TRUE(all_close(gpu_net.owned[i]->value.to(Device::cpu()), cpu_net.owned[i]->value, kStepTolerance));
}

// ---- bad input -------------------------------------------------------------------------------

TEST(TrainOptimizer, RejectsBadInputWithClearMessages) {
  Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net = random_net(rng);
  random_grads(rng, net);
  AdamW opt(net.params(), AdamWOptions{});

  // A gradient of the wrong shape: named, and no parameter changes (checked before any update).
  const TinyNet before = net.clone();
  net.owned[1]->grad = Tensor::zeros({4}, DType::f32);
  EXPECT_EQ(error_of([&] { opt.step(); }),
            "adamw step: parameter 'fc.bias' has gradient of shape [4], expected its value's shape [3]");
  for (size_t i = 0; i < net.owned.size(); ++i)
    EXPECT_TRUE(all_close(net.owned[i]->value, before.owned[i]->value, kExact)) << net.owned[i]->name;
  EXPECT_EQ(opt.steps_taken(), 0);
  net.owned[1]->grad = Tensor();
  EXPECT_NE(error_of([&] { opt.clip_grad_norm(1.0f); }).find("parameter 'fc.bias' has no gradient"),
            std::string::npos);

  // Construction.
  EXPECT_NE(error_of([&] { make_optimizer(OptimizerConfig{"adam"}, net.params()); })
                .find("unknown optimizer 'adam' (expected adamw or sgd)"),
            std::string::npos);
  TinyNet twice;
  twice.add("x", Tensor::zeros({2}, DType::f32), false);
  twice.add("x", Tensor::zeros({2}, DType::f32), false);
  EXPECT_NE(error_of([&] { Sgd sgd(twice.params(), SgdOptions{}); }).find("parameter name 'x' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Sgd sgd(net.params(), SgdOptions{0.1f, 0.0f, 0.0f, 0.0f, true, false}); })
                .find("Nesterov momentum needs momentum > 0"),
            std::string::npos);
  EXPECT_THROW(AdamW(net.params(), AdamWOptions{1e-3f, 1.0f}), Error);
  EXPECT_THROW(Sgd({}, SgdOptions{}), Error);
  EXPECT_THROW(opt.set_lr(-1.0f), Error);
  EXPECT_THROW(opt.set_lr(std::nanf("")), Error);

  // A saved state with a missing name, a wrong shape and a stranger: all reported at once.
  std::vector<nn::Buffer> state = deep_copy(opt.state());
  state.erase(state.begin());                        // fc.weight/exp_avg
  state[0].value = Tensor::zeros({4, 3}, DType::f32);  // fc.weight/exp_avg_sq
  state.push_back({"head.weight/exp_avg", Tensor::zeros({2}, DType::f32)});
  const std::string message = error_of([&] { opt.load_state(state, 5); });
  EXPECT_NE(message.find("adamw load_state: the saved optimizer state does not match"), std::string::npos) << message;
  EXPECT_NE(message.find("'fc.weight/exp_avg' missing (expected f32[3, 4])"), std::string::npos) << message;
  EXPECT_NE(message.find("'fc.weight/exp_avg_sq' is f32[4, 3] on cpu, expected f32[3, 4]"), std::string::npos)
      << message;
  EXPECT_NE(message.find("'head.weight/exp_avg' is not state of this adamw optimizer"), std::string::npos) << message;
  EXPECT_EQ(opt.steps_taken(), 0);
  EXPECT_THROW(opt.load_state(opt.state(), -1), Error);
}

}  // namespace
}  // namespace sg::train
