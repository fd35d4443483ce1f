// Real Keras 2 against our import + forward: tests/golden/keras_real_golden.py (run by hand with
// TensorFlow) saved Keras's own EfficientNetB0/B1 with random weights as legacy .h5 files and their
// eval-mode logits for raw pixels. We import, normalise the pixels with the imported config
// ((x/255 - mean) / std), run our forward, and compare within 1e-4 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "nn/efficientnet.h"
#include "tests/support/testing.h"
#include "weights/hdf5_file.h"
#include "weights/keras_import.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

std::string keras_golden(const std::string& name) {
  const char* from_env = std::getenv("SG_GOLDEN_DIR");
  return std::string(from_env ? from_env : SG_GOLDEN_DIR) + "/" + name;
}

void check_against_keras(const std::string& arch) {
  const std::string weights = keras_golden("keras_real_" + arch + ".h5");
  const std::string logits_file = keras_golden("keras_real_" + arch + "_logits.h5");
  if (!std::filesystem::exists(weights) || !std::filesystem::exists(logits_file))
    GTEST_SKIP() << "MISSING real-Keras goldens " << weights << " / " << logits_file
                 << ": run tests/golden/keras_real_golden.py with tf_keras + tensorflow-cpu";
  const keras::KerasImport imported = keras::read_keras_weights(weights);  // arch inferred
  ASSERT_EQ(imported.config.arch, arch);
  nn::EfficientNet model(imported.config);
  for (const NamedTensor& t : named_tensors(model.parameters(), model.buffers())) {
    const auto it = std::find_if(imported.tensors.begin(), imported.tensors.end(),
                                 [&](const NamedTensor& i) { return i.name == t.name; });
    ASSERT_NE(it, imported.tensors.end()) << t.name;
    Tensor target = t.tensor;
    target.copy_from(it->tensor);
  }
  model.set_training(false);

  const Hdf5File golden(logits_file, Hdf5File::Mode::read);
  const FloatArray pixels = golden.read_floats("pixels");
  const FloatArray expected = golden.read_floats("logits");
  ASSERT_EQ(pixels.shape.size(), 4u);
  std::vector<float> x(pixels.values.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % 3;
    x[i] = (pixels.values[i] / 255.0f - imported.config.mean[c]) / imported.config.std[c];
  }
  nn::Context ctx;
  const Tensor logits =
      model.forward(ctx, Tensor::from_floats(x, Shape{pixels.shape[0], pixels.shape[1], pixels.shape[2], 3}));
  const std::vector<float> got = logits.to_floats();
  ASSERT_EQ(got.size(), expected.values.size());
  double max_abs = 0;
  for (float v : expected.values) max_abs = std::max(max_abs, double(std::fabs(v)));
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(std::fabs(double(got[i]) - expected.values[i]), 1e-4 * max_abs)
        << arch << " logit " << i << ": ours " << got[i] << ", Keras " << expected.values[i];
}

TEST(KerasRealGolden, B0ImportAndForwardMatchKeras) { check_against_keras("b0"); }
TEST(KerasRealGolden, B1ImportAndForwardMatchKeras) { check_against_keras("b1"); }

}  // namespace
}  // namespace sg
