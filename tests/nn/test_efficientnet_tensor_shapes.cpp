// efficientnet_tensor_shapes (no allocation) must list exactly what the built model holds, for
// every arch: the Keras importer infers archs from it (weights/keras_import.h).
#include <gtest/gtest.h>

#include "nn/efficientnet.h"
#include "nn/efficientnet_tensor_shapes.h"
#include "weights/weight_file.h"

namespace sg::nn {
namespace {

void expect_same_as_model(const EfficientNetConfig& config) {
  const std::vector<TensorShapeEntry> listed = efficientnet_tensor_shapes(config);
  EfficientNet model(config);
  const std::vector<NamedTensor> built = named_tensors(model.parameters(), model.buffers());
  ASSERT_EQ(listed.size(), built.size()) << config.arch;
  for (size_t i = 0; i < built.size(); ++i) {
    EXPECT_EQ(listed[i].name, built[i].name) << config.arch << " #" << i;
    EXPECT_EQ(listed[i].shape, built[i].tensor.shape()) << config.arch << " " << built[i].name;
  }
}

TEST(EfficientNetTensorShapes, EveryArchListsTheModelsTensorsInOrder) {
  for (const std::string& arch : efficientnet_arch_names()) {
    EfficientNetConfig config = efficientnet_config(arch);
    config.outputs = 3;
    expect_same_as_model(config);
  }
}

TEST(EfficientNetTensorShapes, GemPoolingAddsItsParameter) {
  EfficientNetConfig config = efficientnet_config("b0");
  config.pooling = HeadPooling::gem;
  expect_same_as_model(config);
}

}  // namespace
}  // namespace sg::nn
