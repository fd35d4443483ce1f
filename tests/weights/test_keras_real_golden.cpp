// Real Keras 2 and Keras 3 against our import + forward: tests/golden/keras_real_golden.py (run by
// hand with TensorFlow; keras3_real_golden.py with Keras 3's numpy backend for the .weights.h5
// layout) saved Keras's own EfficientNetB0/B1 with generated weights through save_weights, kept
// the file's skeleton (groups, attributes, shapes, dtypes; data only for the normalization layer
// and the BN statistics) and Keras's eval-mode logits for raw pixels. We fill a copy of the
// skeleton with the twin generator, import it, normalise the pixels with the imported config
// ((x/255 - mean) / std), run our forward, and compare each image's logits within 1e-4 of its
// largest |logit|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "nn/efficientnet.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/hdf5_file.h"
#include "weights/hdf5_tensor.h"
#include "weights/keras_import.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

std::string keras_golden(const std::string& name) {
  const char* from_env = std::getenv("SG_GOLDEN_DIR");
  return std::string(from_env ? from_env : SG_GOLDEN_DIR) + "/" + name;
}

uint32_t fnv1a32(const std::string& text) {
  uint32_t h = 0x811C9DC5u;
  for (unsigned char c : text) h = (h ^ c) * 0x01000193u;
  return h;
}

// Twin of keras_real_golden.py generated_weight: splitmix64 of (fnv1a32(name) << 32) + index.
std::vector<float> generated_weight(const std::string& name, const std::vector<int64_t>& shape) {
  const std::string leaf = name.substr(name.rfind('/') + 1, name.rfind(':') - name.rfind('/') - 1);
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  double scale = 1;
  if (leaf == "kernel" || leaf == "depthwise_kernel") {
    int64_t fan_in = 1;
    const size_t dims = leaf == "kernel" ? shape.size() - 1 : 2;
    for (size_t i = 0; i < dims; ++i) fan_in *= shape[i];
    scale = std::sqrt(6.0 / double(fan_in));
  }
  std::vector<float> out(static_cast<size_t>(count));
  const uint64_t base = uint64_t(fnv1a32(name)) << 32;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t x = (base + uint64_t(i)) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    const double wave = 2.0 * (double(x >> 11) * 0x1.0p-53) - 1.0;
    const double value = leaf == "gamma" ? 1.0 + 0.25 * wave : (leaf == "beta" || leaf == "bias") ? 0.1 * wave
                                                                                                  : scale * wave;
    out[size_t(i)] = float(value);
  }
  return out;
}

herr_t collect_dataset(hid_t group, const char* name, const H5L_info_t*, void* data) {
  H5O_info_t info;
  if (H5Oget_info_by_name(group, name, &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_DATASET)
    static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

// Fills every unallocated dataset of the skeleton copy at `path` with the generator.
void fill_skeleton(const std::string& path) {
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  ASSERT_TRUE(file.valid()) << path;
  std::vector<std::string> datasets;
  ASSERT_GE(H5Lvisit(file.get(), H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &datasets), 0);
  size_t filled = 0;
  for (const std::string& d : datasets) {
    Hdf5Handle dataset(H5Dopen2(file.get(), d.c_str(), H5P_DEFAULT), H5Dclose);
    ASSERT_TRUE(dataset.valid()) << d;
    H5D_space_status_t status;
    ASSERT_GE(H5Dget_space_status(dataset.get(), &status), 0);
    if (status != H5D_SPACE_STATUS_NOT_ALLOCATED) continue;
    Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    // Keras 3 skeletons name the generator in an attribute (their paths are layers/<auto>/vars/<i>);
    // Keras 2's path "stem_conv/stem_conv/kernel:0" gives "stem_conv/kernel:0" (the Python side's name).
    const std::string name = h5::has_attribute(dataset.get(), "sg_generated_as")
                                 ? h5::read_string_attribute(dataset.get(), "sg_generated_as", d)
                                 : d.substr(0, d.find('/')) + d.substr(d.rfind('/'));
    const std::vector<float> values = generated_weight(name, std::vector<int64_t>(dims.begin(), dims.end()));
    ASSERT_GE(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0) << d;
    ++filled;
  }
  EXPECT_GT(filled, 100u);
}

// keras_version: 2 (keras_real_golden.py, legacy .h5) or 3 (keras3_real_golden.py, .weights.h5).
void check_against_keras(const std::string& arch, int keras_version = 2) {
  const std::string prefix = keras_version == 3 ? "keras3_real_" : "keras_real_";
  const std::string extension = keras_version == 3 ? ".weights.h5" : ".h5";
  const std::string skeleton = keras_golden(prefix + arch + ".skeleton" + extension);
  const std::string logits_file = keras_golden(prefix + arch + "_logits.h5");
  if (!std::filesystem::exists(skeleton) || !std::filesystem::exists(logits_file))
    GTEST_SKIP() << "MISSING real-Keras goldens " << skeleton << " / " << logits_file << ": run tests/golden/"
                 << (keras_version == 3 ? "keras3_real_golden.py with keras 3 (numpy backend)"
                                        : "keras_real_golden.py with tf_keras + tensorflow-cpu");
  testing::TempDir dir;
  const std::string weights = dir.file(prefix + arch + extension);
  std::filesystem::copy_file(skeleton, weights);
  fill_skeleton(weights);
  const keras::KerasImport imported = keras::read_keras_weights(weights);  // arch inferred
  ASSERT_EQ(imported.config.arch, arch);
  ASSERT_EQ(imported.format, keras_version == 3 ? keras::KerasFormat::keras3_weights_h5 : keras::KerasFormat::legacy_h5);
  ASSERT_TRUE(imported.has_normalization);
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
  ASSERT_EQ(expected.shape.size(), 2u);
  std::vector<float> x(pixels.values.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % 3;
    // Keras: Rescaling multiplies by 1/255, then Normalization.
    x[i] = (pixels.values[i] * (1.0f / 255.0f) - imported.config.mean[c]) / imported.config.std[c];
  }
  nn::Context ctx;
  const Tensor logits =
      model.forward(ctx, Tensor::from_floats(x, Shape{pixels.shape[0], pixels.shape[1], pixels.shape[2], 3}));
  const std::vector<float> got = logits.to_floats();
  ASSERT_EQ(got.size(), expected.values.size());
  const size_t classes = size_t(expected.shape[1]);
  for (size_t row = 0; row < size_t(expected.shape[0]); ++row) {
    double max_abs = 0, max_error = 0;
    for (size_t k = 0; k < classes; ++k) max_abs = std::max(max_abs, double(std::fabs(expected.values[row * classes + k])));
    for (size_t k = 0; k < classes; ++k) {
      const size_t i = row * classes + k;
      max_error = std::max(max_error, std::fabs(double(got[i]) - expected.values[i]));
      EXPECT_LE(std::fabs(double(got[i]) - expected.values[i]), 1e-4 * max_abs)
          << arch << " image " << row << " logit " << k << ": ours " << got[i] << ", Keras " << expected.values[i];
    }
    std::printf("[ keras %d ] %s image %zu: max |ours - Keras| %.3g, relative to max |logit| %.3g: %.3g\n",
                keras_version, arch.c_str(),
                row, max_error, max_abs, max_error / max_abs);
  }
}

TEST(KerasRealGolden, B0ImportAndForwardMatchKeras) { check_against_keras("b0"); }
TEST(KerasRealGolden, B1ImportAndForwardMatchKeras) { check_against_keras("b1"); }

TEST(KerasRealGolden, Keras3B0WeightsH5ImportAndForwardMatchKeras) { check_against_keras("b0", 3); }

// A Keras 3 file whose vars groups do not name their layers (older Keras 3) is refused, naming the
// group, rather than mapped by auto names such as "batch_normalization_12".
TEST(KerasRealGolden, Keras3WithoutLayerNamesIsRefused) {
  const std::string skeleton = keras_golden("keras3_real_b0.skeleton.weights.h5");
  if (!std::filesystem::exists(skeleton)) GTEST_SKIP() << "MISSING " << skeleton;
  testing::TempDir dir;
  const std::string weights = dir.file("old_keras3.weights.h5");
  std::filesystem::copy_file(skeleton, weights);
  {
    Hdf5Handle file(H5Fopen(weights.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_TRUE(file.valid());
    ASSERT_GE(H5Adelete_by_name(file.get(), "layers/batch_normalization_7/vars", "name", H5P_DEFAULT), 0);
  }
  ASSERT_TRUE(keras::is_keras_file(weights));
  try {
    keras::read_keras_weights(weights);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(weights), std::string::npos) << message;
    EXPECT_NE(message.find("layers/batch_normalization_7"), std::string::npos) << message;
    EXPECT_NE(message.find("does not record its layer name"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace sg
