// Fine-tuning start: a 1000-class file into a 5-output network (weights/pretrained.h).
#include <gtest/gtest.h>

#include <algorithm>

#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/weights/temp_dir.h"
#include "weights/pretrained.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

std::string save_model(nn::EfficientNet& model, const std::string& path) {
  WeightAttributes attributes;
  attributes.arch_config = nn::config_text(model.config());
  save_weights(path, named_tensors(model.parameters(), model.buffers()), attributes);
  return path;
}

bool contains(const std::vector<std::string>& v, const std::string& prefix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

TEST(Pretrained, BackboneLoadsAndTheNewHeadIsReported) {
  testing::TempDir dir;
  nn::EfficientNetConfig source_config = nn::efficientnet_config("lite0");  // TF-SAME, eps 1e-3: must carry over
  source_config.seed = 11;
  nn::EfficientNet source(source_config);
  const std::string path = save_model(source, (dir.path() / "lite0_imagenet.h5").string());

  const nn::EfficientNetConfig config = pretrained_config(path, 5);
  EXPECT_EQ(config.outputs, 5);
  EXPECT_EQ(config.padding, Padding::tf_same);
  EXPECT_DOUBLE_EQ(config.bn_eps, 1e-3);
  nn::EfficientNetConfig task = config;
  task.seed = 99;  // different fresh weights, so "loaded" is visible
  nn::EfficientNet model(task);
  const PretrainedReport report = load_pretrained(model, path);

  const size_t total = named_tensors(model.parameters(), model.buffers()).size();
  EXPECT_EQ(report.loaded.size(), total - 2);
  ASSERT_EQ(report.skipped.size(), 2u) << format_pretrained_report(report);
  EXPECT_TRUE(contains(report.skipped, "classifier.weight: file has [1000, 1280]")) << report.skipped[0];
  EXPECT_TRUE(contains(report.skipped, "classifier.bias"));
  EXPECT_EQ(report.fresh, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_TRUE(report.notes.empty());

  // The backbone equals the file's; the head keeps its own initialisation.
  const auto src_tensors = named_tensors(source.parameters(), source.buffers());
  const auto dst_tensors = named_tensors(model.parameters(), model.buffers());
  for (size_t i = 0; i < dst_tensors.size(); ++i) {
    if (dst_tensors[i].name.rfind("classifier.", 0) == 0) continue;
    ASSERT_EQ(dst_tensors[i].name, src_tensors[i].name);
    EXPECT_EQ(dst_tensors[i].tensor.to_floats(), src_tensors[i].tensor.to_floats()) << dst_tensors[i].name;
  }
  const std::string text = format_pretrained_report(report);
  EXPECT_NE(text.find("skipped 2:"), std::string::npos) << text;
  EXPECT_NE(text.find("new (freshly initialised) 2:"), std::string::npos) << text;
}

TEST(Pretrained, AnotherArchIsAnErrorNamingTheFile) {
  testing::TempDir dir;
  nn::EfficientNet b3(nn::efficientnet_config("b3"));
  const std::string path = save_model(b3, (dir.path() / "b3.h5").string());
  nn::EfficientNet b0(nn::efficientnet_config("b0"));
  try {
    load_pretrained(b0, path);
    FAIL() << "a B3 file loaded into a B0";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("b3.h5"), std::string::npos) << message;
    EXPECT_NE(message.find("efficientnet-b3 weights, the model is efficientnet-b0"), std::string::npos) << message;
  }
}

TEST(Pretrained, ConfigDifferencesAreNoted) {
  testing::TempDir dir;
  nn::EfficientNet source(nn::efficientnet_config("b0"));
  const std::string path = save_model(source, (dir.path() / "b0.h5").string());
  nn::EfficientNetConfig config = nn::efficientnet_config("b0");
  config.padding = Padding::tf_same;
  config.outputs = 1000;
  nn::EfficientNet model(config);
  const PretrainedReport report = load_pretrained(model, path);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_TRUE(report.fresh.empty());
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("trained with symmetric"), std::string::npos) << report.notes[0];
}

}  // namespace
}  // namespace sg
