// Module forward/backward against central differences of the module chain's own forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include <cmath>
#include <memory>

#include "nn/activation.h"
#include "nn/batch_norm2d.h"
#include "nn/conv2d.h"
#include "nn/head.h"
#include "nn/mbconv.h"
#include "tests/support/testing.h"

namespace sg::nn {
namespace {

// A 2-block network on tiny inputs: stem conv + BN/swish, a depthwise-separable block with SE,
// an inverted-residual block with SE, residual and drop-connect, then the head.
struct TinyNet {
  TinyNet(HeadPooling pooling, double drop_connect, double dropout) {
    const Device cpu = Device::cpu();
    stem = std::make_unique<Conv2d>("conv_stem", Conv2dOptions{3, 6, 3, 2, 1, Padding::tf_same, false}, cpu, 7);
    stem_bn = std::make_unique<BatchNorm2d>("bn1", 6, 1e-3, 0.1, math::Activation::swish, cpu);
    MBConvOptions a;
    a.in_channels = 6;
    a.out_channels = 4;
    a.kernel = 3;
    a.activation = math::Activation::swish;
    a.padding = Padding::tf_same;
    block0 = std::make_unique<MBConv>("blocks.0.0", a, cpu, 7);
    MBConvOptions b = a;
    b.in_channels = b.out_channels = 4;
    b.kernel = 5;
    b.expand_ratio = 3;
    b.drop_connect = drop_connect;
    b.padding = Padding::symmetric;
    block1 = std::make_unique<MBConv>("blocks.1.0", b, cpu, 7);
    // GeM clamps its input at 1e-6, a kink that finite differences straddle at random:
    // feed it strictly positive values (sigmoid) so the check is exact.
    act = std::make_unique<Activation>("act", pooling == HeadPooling::gem ? math::Activation::sigmoid
                                                                          : math::Activation::mish);
    head = std::make_unique<Head>("", HeadOptions{4, 3, pooling, dropout, 3.0}, cpu, 7);
    stem->set_input_grad(true);
  }
  std::vector<Module*> modules() const {
    return {stem.get(), stem_bn.get(), block0.get(), block1.get(), act.get(), head.get()};
  }
  Tensor forward(Context& ctx, const Tensor& x) {
    Tensor h = x;
    for (Module* m : modules()) h = m->forward(ctx, h);
    return h;
  }
  Tensor backward(Context& ctx, const Tensor& dy) {
    Tensor d = dy;
    auto ms = modules();
    for (auto it = ms.rbegin(); it != ms.rend(); ++it) d = (*it)->backward(ctx, d);
    return d;
  }
  std::vector<Parameter*> parameters() const {
    std::vector<Parameter*> out;
    for (Module* m : modules())
      for (Parameter* p : m->parameters()) out.push_back(p);
    return out;
  }
  void set_training(bool t) {
    for (Module* m : modules()) m->set_training(t);
  }
  std::unique_ptr<Conv2d> stem;
  std::unique_ptr<BatchNorm2d> stem_bn;
  std::unique_ptr<MBConv> block0, block1;
  std::unique_ptr<Activation> act;
  std::unique_ptr<Head> head;
};

// loss = sum(logits * r), accumulated in double.
double weighted_sum(const Tensor& y, const std::vector<float>& r) {
  const std::vector<float> v = y.to_floats();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * double(r[i]);
  return s;
}

void check_gradients(HeadPooling pooling, bool training, double drop_connect, double dropout) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  TinyNet net(pooling, drop_connect, dropout);
  net.set_training(training);
  // Randomise BN so the affine parameters and running statistics matter.
  for (Module* m : net.modules())
    for (Buffer* b : m->buffers()) {
      const bool var = b->name.ends_with("running_var");
      b->value.copy_from(testing::random_tensor(rng, b->value.shape(), DType::f32, var ? 0.5f : -0.2f, var ? 1.5f : 0.2f));
    }
  for (Parameter* p : net.parameters())
    if (p->is_bias_or_norm && p->name.find("global_pool") == std::string::npos)
      p->value.copy_from(testing::random_tensor(rng, p->value.shape(), DType::f32, p->name.ends_with("weight") ? 0.5f : -0.3f,
                                                p->name.ends_with("weight") ? 1.5f : 0.3f));
  Tensor x = testing::random_tensor(rng, {4, 9, 9, 3}, DType::f32, 0.0f, 1.0f);  // >= 0 keeps GeM smooth
  const std::vector<float> r = testing::random_tensor(rng, {4, 3}).to_floats();
  // Each evaluation uses a fresh context with the same seed and offset: the same masks.
  // Running statistics move in training, but training outputs use batch statistics only.
  auto loss = [&]() {
    Context ctx(false, 1234, 10);
    return weighted_sum(net.forward(ctx, x), r);
  };
  Context ctx(true, 1234, 10);
  const Tensor y = net.forward(ctx, x);
  const Tensor dy = Tensor::from_floats(r, y.shape());
  const Tensor dx = net.backward(ctx, dy);
  EXPECT_EQ(ctx.saved_count(), 0u) << "every saved entry is consumed by backward";

  // f32 forward: central differences with a large step; the tolerance covers f32 rounding.
  const double eps = 1e-2;
  const testing::Tolerance tol{2e-3, 2e-2};
  auto check = [&](Tensor& value, const Tensor& grad, const std::string& what) {
    float* v = value.data_as<float>();
    const std::vector<float> g = grad.to_floats();
    const std::vector<double> x0(v, v + value.numel());
    auto f = [&](const std::vector<double>& xs) {
      for (size_t i = 0; i < xs.size(); ++i) v[i] = float(xs[i]);
      const double out = loss();
      for (size_t i = 0; i < xs.size(); ++i) v[i] = float(x0[i]);
      return out;
    };
    EXPECT_TRUE(testing::gradient_matches(f, x0, std::vector<double>(g.begin(), g.end()), eps, tol)) << what;
  };
  check(x, dx, "input");
  for (Parameter* p : net.parameters()) check(p->value, p->grad, p->name);
}

TEST(NnModules, GradientsMatchFiniteDifferencesEvalAvg) { check_gradients(HeadPooling::avg, false, 0.0, 0.0); }
TEST(NnModules, GradientsMatchFiniteDifferencesTrainDropConnect) {
  check_gradients(HeadPooling::avg, true, 0.5, 0.3);
}
TEST(NnModules, GradientsMatchFiniteDifferencesTrainGem) { check_gradients(HeadPooling::gem, true, 0.0, 0.0); }
// Max pooling has no derivative where two values tie, and inside a network activations can come
// within the finite-difference step of each other (this made a whole-network check of the
// avg+max head fail at random). So the avg+max head is checked on its own, on inputs whose
// values in every (sample, channel) are 0.05 apart: a step of 0.01 never changes the argmax.
TEST(NnModules, AvgMaxHeadGradientsMatchFiniteDifferences) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Head head("", HeadOptions{5, 3, HeadPooling::avg_max, 0.0, 3.0}, Device::cpu(), 7);
  head.set_training(false);
  const int64_t n = 2, hw = 9, c = 5;
  std::vector<float> values(size_t(n * hw * c));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      std::vector<int> order(static_cast<size_t>(hw));
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng.engine());
      const float shift = rng.uniform(-0.5f, 0.5f);
      for (int64_t i = 0; i < hw; ++i) values[size_t((b * hw + i) * c + ch)] = shift + 0.05f * float(order[size_t(i)]);
    }
  Tensor x = Tensor::from_floats(values, {n, 3, 3, c});
  const std::vector<float> r = testing::random_tensor(rng, {n, 3}).to_floats();
  auto loss = [&]() {
    Context ctx(false);
    return weighted_sum(head.forward(ctx, x), r);
  };
  Context ctx(true);
  const Tensor y = head.forward(ctx, x);
  const Tensor dx = head.backward(ctx, Tensor::from_floats(r, y.shape()));
  auto check = [&](Tensor& value, const Tensor& grad, const std::string& what) {
    float* v = value.data_as<float>();
    const std::vector<float> g = grad.to_floats();
    const std::vector<double> x0(v, v + value.numel());
    auto f = [&](const std::vector<double>& xs) {
      for (size_t i = 0; i < xs.size(); ++i) v[i] = float(xs[i]);
      const double out = loss();
      for (size_t i = 0; i < xs.size(); ++i) v[i] = float(x0[i]);
      return out;
    };
    EXPECT_TRUE(testing::gradient_matches(f, x0, std::vector<double>(g.begin(), g.end()), 1e-2, {1e-4, 1e-3}))
        << what;
  };
  check(x, dx, "input");
  for (Parameter* p : head.parameters()) check(p->value, p->grad, p->name);
}

TEST(NnModules, BackwardAddsIntoGradients) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  Conv2d conv("c", Conv2dOptions{3, 5, 3, 1, 1, Padding::symmetric, true}, Device::cpu(), 1);
  const Tensor x = testing::random_tensor(rng, {2, 5, 5, 3});
  const Tensor dy = testing::random_tensor(rng, {2, 5, 5, 5});
  auto step = [&]() {
    Context ctx(true);
    conv.forward(ctx, x);
    conv.backward(ctx, dy);
  };
  step();
  const std::vector<float> once = conv.weight().grad.to_floats();
  step();
  const std::vector<float> twice = conv.weight().grad.to_floats();
  for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-5 + 1e-5 * std::abs(once[i]));
  conv.zero_grad();
  for (float g : conv.weight().grad.to_floats()) ASSERT_EQ(g, 0.0f);
}

TEST(NnModules, TrainModeUpdatesRunningStatisticsEvalDoesNot) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  BatchNorm2d bn("bn", 4, 1e-5, 0.1, math::Activation::identity, Device::cpu());
  const Tensor x = testing::random_tensor(rng, {2, 3, 3, 4}, DType::f32, 1.0f, 3.0f);  // mean ~2
  Context ctx;
  bn.forward(ctx, x);
  for (float m : bn.running_mean().value.to_floats()) EXPECT_EQ(m, 0.0f);
  bn.set_training(true);
  const Tensor y = bn.forward(ctx, x);
  for (float m : bn.running_mean().value.to_floats()) EXPECT_GT(m, 0.05f);  // 0.1 * ~2
  // Training output is normalised with the batch statistics: mean ~0 per channel.
  const std::vector<float> v = y.to_floats();
  for (int c = 0; c < 4; ++c) {
    double s = 0;
    for (size_t i = size_t(c); i < v.size(); i += 4) s += v[i];
    EXPECT_NEAR(s / 18.0, 0.0, 1e-5);
  }
}

TEST(NnModules, BadInputNamesTheModule) {
  Conv2d conv("blocks.2.1.conv_dw", Conv2dOptions{8, 8, 3, 1, 8, Padding::symmetric, false}, Device::cpu(), 1);
  Context ctx(true);
  const Tensor x = Tensor::zeros({1, 4, 4, 6}, DType::f32);
  try {
    conv.forward(ctx, x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.2.1.conv_dw"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1, 4, 4, 6]"), std::string::npos) << e.what();
  }
  try {
    conv.backward(ctx, x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without a forward"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Conv2d("bad", Conv2dOptions{6, 4, 3, 1, 4, Padding::symmetric, false}, Device::cpu(), 1), Error);
  EXPECT_THROW(parse_head_pooling("median"), Error);
}

// Saved state is typed: a backward that asks for another struct than its forward saved (a
// forward and a backward of different modules) stops with a message, never reads a wrong field.
TEST(NnModules, SavedStateOfAnotherTypeIsAnError) {
  struct OneTensor {
    Tensor x;
    std::vector<const Tensor*> tensors() const { return {&x}; }
  };
  struct OneCount {
    uint64_t count = 0;
    std::vector<const Tensor*> tensors() const { return {}; }
  };
  Conv2d owner("blocks.0.0.conv_pw", Conv2dOptions{4, 4, 1, 1, 1, Padding::symmetric, false}, Device::cpu(), 1);
  Context ctx(true);
  ctx.save(&owner, OneTensor{Tensor::zeros({1, 2, 2, 4}, DType::f32)});
  EXPECT_EQ(ctx.saved_bytes(), 16u * sizeof(float));
  try {
    ctx.take<OneCount>(&owner, "blocks.0.0.conv_pw");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another module's saved state"), std::string::npos) << e.what();
  }
  ctx.save(&owner, OneCount{7});
  EXPECT_EQ(ctx.saved_bytes(), 0u);
  EXPECT_EQ(ctx.take<OneCount>(&owner, "blocks.0.0.conv_pw").count, 7u);
  EXPECT_THROW(ctx.take<OneCount>(&owner, "blocks.0.0.conv_pw"), Error);  // taken once only

  Context inference(false);  // nothing is kept when no backward follows
  inference.save(&owner, OneCount{7});
  EXPECT_EQ(inference.saved_bytes(), 0u);
  EXPECT_THROW(inference.take<OneCount>(&owner, "blocks.0.0.conv_pw"), Error);
}

}  // namespace
}  // namespace sg::nn
