// EfficientNet structure (docs/efficientnet.md, torchvision parameter counts), forward on the CPU,
// train/eval behaviour, the summary and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "nn/summary.h"
#include "tests/support/testing.h"

namespace sg::nn {
namespace {

EfficientNetConfig config_for(const std::string& arch, int64_t outputs = 1000) {
  EfficientNetConfig c = efficientnet_config(arch);
  c.outputs = outputs;
  return c;
}

// Counted with /usr/bin/python3: sum(p.numel() for p in torchvision.models.efficientnet_bN().parameters())
// (torchvision 0.14): its structure is ours (SE from the block input, round_filters, ceil repeats).
TEST(EfficientNet, ParameterCountsMatchTorchvision) {
  EXPECT_EQ(EfficientNet(config_for("b0")).parameter_count(), 5288548);
  EXPECT_EQ(EfficientNet(config_for("b3")).parameter_count(), 12233232);
  EXPECT_EQ(EfficientNet(config_for("b7")).parameter_count(), 66347960);
}

// The Lite scaling (width, depth) checked by parameter count: 4.652 M, 5.417 M, 6.092 M, 8.197 M and
// 13.007 M with 1000 classes are the counts published for the TF-derived Lite ports (d-li14's
// efficientnet-lite.pytorch README); a wrong width or depth moves them by far more than the rounding.
TEST(EfficientNet, LiteParameterCountsMatchThePublishedPorts) {
  const std::pair<const char*, double> expected[] = {
      {"lite0", 4.652e6}, {"lite1", 5.417e6}, {"lite2", 6.092e6}, {"lite3", 8.197e6}, {"lite4", 13.007e6}};
  for (const auto& [arch, count] : expected)
    EXPECT_NEAR(double(EfficientNet(config_for(arch)).parameter_count()), count, 500.0) << arch;
}

TEST(EfficientNet, RoundFiltersAndRepeats) {
  EXPECT_EQ(round_filters(32, 1.2), 40);
  EXPECT_EQ(round_filters(1280, 2.0), 2560);
  EXPECT_EQ(round_filters(16, 1.4), 24);    // 22.4 -> 24
  EXPECT_EQ(round_filters(112, 1.1), 120);  // 123.2 -> 120 (>= 0.9 f)
  EXPECT_EQ(round_filters(24, 1.2), 32);    // 28.8 -> 32
  EXPECT_EQ(round_filters(3, 1.0), 8);      // at least 8
  EXPECT_EQ(round_repeats(3, 1.4), 5);
  EXPECT_EQ(round_repeats(4, 3.1), 13);
  EXPECT_EQ(round_repeats(1, 1.0), 1);
}

void expect_layout(const std::string& arch, int64_t stem, std::vector<int64_t> outs, std::vector<int64_t> repeats,
                   int64_t head) {
  SCOPED_TRACE(arch);
  const EfficientNetLayout l = efficientnet_layout(efficientnet_config(arch));
  EXPECT_EQ(l.stem_channels, stem);
  EXPECT_EQ(l.head_channels, head);
  ASSERT_EQ(l.stages.size(), 7u);
  int64_t in = stem;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(l.stages[i].out_channels, outs[i]) << "stage " << i;
    EXPECT_EQ(l.stages[i].repeats, repeats[i]) << "stage " << i;
    EXPECT_EQ(l.stages[i].in_channels, in) << "stage " << i;
    in = outs[i];
  }
}

TEST(EfficientNet, StageChannelsAndRepeatsAsReference) {
  expect_layout("b0", 32, {16, 24, 40, 80, 112, 192, 320}, {1, 2, 2, 3, 3, 4, 1}, 1280);
  expect_layout("b3", 40, {24, 32, 48, 96, 136, 232, 384}, {2, 3, 3, 5, 5, 6, 2}, 1536);
  expect_layout("b7", 64, {32, 48, 80, 160, 224, 384, 640}, {4, 7, 7, 10, 10, 13, 4}, 2560);
  // Lite4: width 1.4, depth 1.8, stem/head fixed, first and last stage not depth-scaled.
  expect_layout("lite4", 32, {24, 32, 56, 112, 160, 272, 448}, {1, 4, 4, 6, 6, 8, 1}, 1280);
}

TEST(EfficientNet, TimmNamesAndShapes) {
  EfficientNet m(config_for("b0"));
  std::set<std::string> names;
  std::map<std::string, Shape> shapes;
  for (Parameter* p : m.parameters()) {
    EXPECT_TRUE(names.insert(p->name).second) << "duplicate " << p->name;
    shapes[p->name] = p->value.shape();
  }
  for (Buffer* b : m.buffers()) EXPECT_TRUE(names.insert(b->name).second) << "duplicate " << b->name;
  EXPECT_EQ(m.parameters().front()->name, "conv_stem.weight");
  EXPECT_EQ(m.parameters().back()->name, "classifier.bias");
  EXPECT_EQ(shapes.at("conv_stem.weight"), (Shape{32, 3, 3, 3}));                  // OHWI
  EXPECT_EQ(shapes.at("blocks.0.0.conv_dw.weight"), (Shape{32, 3, 3, 1}));         // depthwise, no expansion
  EXPECT_EQ(shapes.at("blocks.0.0.se.conv_reduce.weight"), (Shape{8, 1, 1, 32}));  // 0.25 * 32 input channels
  EXPECT_EQ(shapes.at("blocks.0.0.conv_pw.weight"), (Shape{16, 1, 1, 32}));
  EXPECT_EQ(shapes.at("blocks.0.0.bn2.weight"), (Shape{16}));
  EXPECT_EQ(shapes.at("blocks.1.0.conv_pw.weight"), (Shape{96, 1, 1, 16}));
  EXPECT_EQ(shapes.at("blocks.1.0.se.conv_reduce.weight"), (Shape{4, 1, 1, 96}));  // 0.25 * 16, not of 96
  EXPECT_EQ(shapes.at("blocks.1.0.se.conv_expand.bias"), (Shape{96}));
  EXPECT_EQ(shapes.at("blocks.5.3.conv_pwl.weight"), (Shape{192, 1, 1, 1152}));
  EXPECT_EQ(shapes.at("blocks.5.3.bn3.weight"), (Shape{192}));
  EXPECT_EQ(shapes.at("conv_head.weight"), (Shape{1280, 1, 1, 320}));
  EXPECT_EQ(shapes.at("classifier.weight"), (Shape{1000, 1280}));
  EXPECT_TRUE(names.count("bn2.running_var"));
  EXPECT_EQ(m.buffers().size(), 2u * 49u);  // 49 BN layers in B0
  // Drop-connect grows linearly with the block index.
  ASSERT_EQ(m.blocks().size(), 16u);
  EXPECT_EQ(m.blocks()[0]->options().drop_connect, 0.0);
  EXPECT_DOUBLE_EQ(m.blocks()[15]->options().drop_connect, 0.2 * 15 / 16);

  EfficientNet lite(config_for("lite0"));
  for (Parameter* p : lite.parameters()) EXPECT_EQ(p->name.find(".se."), std::string::npos) << p->name;
  EXPECT_EQ(lite.config().activation, math::Activation::relu6);
  EXPECT_EQ(lite.config().padding, Padding::tf_same);
}

TEST(EfficientNet, SummaryOfB0) {
  const EfficientNet m(config_for("b0"));
  const Summary s = summarize(m, Shape{1, 224, 224, 3});
  EXPECT_EQ(s.parameters, 5288548);
  EXPECT_EQ(s.output, (Shape{1, 1000}));
  // Published: 0.39-0.40 GMACs at 224 (torchvision 0.39 "GFLOPS", timm 0.40).
  EXPECT_GT(s.macs, 380'000'000);
  EXPECT_LT(s.macs, 410'000'000);
  const std::string text = format_summary(s, "b0");
  EXPECT_NE(text.find("5,288,548"), std::string::npos);
  EXPECT_NE(text.find("blocks.6.0.conv_pwl"), std::string::npos);
  EXPECT_NE(text.find("[1, 7, 7, 1280]"), std::string::npos);
  const Summary six = summarize(EfficientNet(config_for("b0", 6)), Shape{2, 512, 512, 3});
  EXPECT_EQ(six.parameters, 5288548 - 994 * 1281);
  EXPECT_EQ(six.output, (Shape{2, 6}));
}

TEST(EfficientNet, ForwardOnCpuGivesFiniteLogits) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNet m(config_for("b0"));
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3}, DType::f32, -2.0f, 2.0f);
  Context ctx;
  const Tensor y = m.forward(ctx, x);
  ASSERT_EQ(y.shape(), (Shape{2, 1000}));
  EXPECT_EQ(ctx.saved_count(), 0u) << "inference keeps nothing";
  for (float v : y.to_floats()) ASSERT_TRUE(std::isfinite(v));
  // Eval is deterministic; the two samples differ.
  Context ctx2;
  const std::vector<float> again = m.forward(ctx2, x).to_floats(), first = y.to_floats();
  EXPECT_EQ(again, first);
  EXPECT_NE(first[0], first[1000]);
  // An odd size with TF-SAME padding too.
  EfficientNet lite(config_for("lite0", 5));
  const Tensor y2 = lite.forward(ctx, testing::random_tensor(rng, {1, 45, 37, 3}));
  ASSERT_EQ(y2.shape(), (Shape{1, 5}));
  for (float v : y2.to_floats()) ASSERT_TRUE(std::isfinite(v));
}

TEST(EfficientNet, TrainingStepOnCpu) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  EfficientNetConfig c = config_for("b0", 6);
  c.pooling = HeadPooling::gem;
  EfficientNet m(c);
  m.set_training(true);
  const Tensor x = testing::random_tensor(rng, {2, 64, 64, 3});
  Context ctx(true, 42, 0);
  const Tensor y = m.forward(ctx, x);
  // One offset per residual block with drop-connect > 0 (B0: 9 residual blocks, block 0 has none
  // and is not residual anyway) and one for the head's dropout.
  EXPECT_EQ(ctx.rng_offset(), 9u + 1u);
  EXPECT_GT(ctx.saved_count(), 0u);
  const Tensor dy = testing::random_tensor(rng, y.shape());
  const Tensor dx = m.backward(ctx, dy);
  EXPECT_FALSE(dx.defined()) << "the stem computes no input gradient by default";
  EXPECT_EQ(ctx.saved_count(), 0u);
  int64_t nonzero = 0;
  for (Parameter* p : m.parameters()) {
    for (float g : p->grad.to_floats()) {
      ASSERT_TRUE(std::isfinite(g)) << p->name;
      nonzero += g != 0.0f;
    }
  }
  EXPECT_GT(nonzero, m.parameter_count() / 2);
  // Running statistics moved in training mode.
  bool moved = false;
  for (Buffer* b : m.buffers())
    if (b->name == "bn1.running_mean")
      for (float v : b->value.to_floats()) moved |= v != 0.0f;
  EXPECT_TRUE(moved);
  // Training output differs from evaluation output (batch statistics, dropout).
  m.set_training(false);
  Context eval;
  EXPECT_NE(m.forward(eval, x).to_floats(), y.to_floats());
}

TEST(EfficientNet, BadInputGivesClearMessages) {
  try {
    efficientnet_config("b9");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown architecture 'b9'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lite4"), std::string::npos) << msg;
  }
  EXPECT_EQ(efficientnet_config("EfficientNet-B3").arch, "b3");
  EXPECT_EQ(efficientnet_config("efficientnet_lite2").arch, "lite2");
  EfficientNet m(config_for("b0"));
  Context ctx;
  try {
    m.forward(ctx, Tensor::zeros({1, 16, 64, 3}, DType::f32));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("16x64 is too small"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m.forward(ctx, Tensor::zeros({1, 64, 64, 4}, DType::f32)), Error);
  EXPECT_THROW(summarize(m, Shape{1, 8, 8, 3}), Error);
}

}  // namespace
}  // namespace sg::nn

TEST(EfficientNetConfigText, RoundTripsEveryArchAndOption) {
  for (const std::string& arch : sg::nn::efficientnet_arch_names()) {
    sg::nn::EfficientNetConfig c = sg::nn::efficientnet_config(arch);
    c.outputs = 5;
    c.pooling = sg::nn::HeadPooling::gem;
    c.activation = sg::math::Activation::mish;
    const std::string text = sg::nn::config_text(c);
    const sg::nn::EfficientNetConfig back = sg::nn::parse_config_text(text);
    EXPECT_EQ(sg::nn::config_text(back), text) << arch;
    EXPECT_EQ(back.outputs, 5);
    EXPECT_EQ(back.padding, c.padding);
    EXPECT_EQ(back.lite, c.lite);
    EXPECT_FLOAT_EQ(float(back.bn_eps), float(c.bn_eps));
    EXPECT_EQ(sg::nn::efficientnet_layout(back).block_count(), sg::nn::efficientnet_layout(c).block_count());
  }
}

TEST(EfficientNetConfigText, ShortLinesStartFromTheArchDefaults) {
  const sg::nn::EfficientNetConfig c = sg::nn::parse_config_text("arch=b5 outputs=6");
  EXPECT_EQ(c.outputs, 6);
  EXPECT_DOUBLE_EQ(c.bn_eps, 1e-3);
  EXPECT_DOUBLE_EQ(c.width, 1.6);
}

TEST(EfficientNetConfigText, BadLinesNameTheKey) {
  const auto message = [](const char* text) {
    try {
      sg::nn::parse_config_text(text, "w.h5");
    } catch (const sg::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("outputs=6").find("no arch="), std::string::npos);
  EXPECT_NE(message("arch=b0 colour=red").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(message("arch=b0 outputs=six").find("outputs='six' is not a number"), std::string::npos);
  EXPECT_NE(message("arch=b0 mean=1,2").find("3 comma-separated"), std::string::npos);
  EXPECT_NE(message("arch=b9").find("unknown architecture 'b9'"), std::string::npos);
  EXPECT_NE(message("arch=b0 padding=reflect").find("unknown padding"), std::string::npos);
  EXPECT_EQ(message("arch=b0 outputs=six").rfind("w.h5", 0), 0u);
}
