// Keras legacy HDF5 import without TensorFlow: the tests write Keras-LAYOUT files by hand with the
// HDF5 C API (what Keras's save_weights lays out: attributes layer_names / weight_names as
// fixed-length byte strings, datasets at /<layer>/<layer>/<weight>:0, Keras shapes), from a model's
// own random weights mapped back to Keras names and layouts by a mapping written here independently
// of the importer's; then import and compare every tensor exactly. Bad input: one clear error
// naming the file and the first offending layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "core/error.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/hdf5_file.h"
#include "weights/keras_import.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n does not contain \"" << part << "\"";
}

// Keras's location of one of our tensors: layer, weight, and ours.dims[k] = keras.dims[perm[k]].
struct KerasSpot {
  std::string layer, leaf;
  std::vector<int> perm;
};

KerasSpot keras_spot(const std::string& name, const nn::EfficientNetLayout& layout, const std::string& classifier) {
  static const std::map<std::string, std::string> bn{
      {"weight", "gamma"}, {"bias", "beta"}, {"running_mean", "moving_mean"}, {"running_var", "moving_variance"}};
  const std::vector<int> conv{3, 0, 1, 2}, depthwise{2, 0, 1, 3}, dense{1, 0};
  const size_t dot = name.rfind('.');
  const std::string module = name.substr(0, dot), leaf = name.substr(dot + 1);
  const bool is_weight = leaf == "weight";
  if (module == "conv_stem") return {"stem_conv", "kernel", conv};
  if (module == "conv_head") return {"top_conv", "kernel", conv};
  if (module == "bn1") return {"stem_bn", bn.at(leaf), {}};
  if (module == "bn2") return {"top_bn", bn.at(leaf), {}};
  if (module == "classifier") return {classifier, is_weight ? "kernel" : "bias", is_weight ? dense : std::vector<int>{}};
  int stage = 0, j = 0;
  char part[64] = {};
  EXPECT_EQ(std::sscanf(module.c_str(), "blocks.%d.%d.%63s", &stage, &j, part), 3) << name;
  const std::string p = part, prefix = "block" + std::to_string(stage + 1) + char('a' + j) + "_";
  const bool expands = layout.stages[size_t(stage)].expand_ratio != 1;
  auto conv_spot = [&](const std::string& layer) {
    return KerasSpot{prefix + layer, is_weight ? "kernel" : "bias", is_weight ? conv : std::vector<int>{}};
  };
  if (p == "se.conv_reduce") return conv_spot("se_reduce");
  if (p == "se.conv_expand") return conv_spot("se_expand");
  if (p == "conv_dw") return {prefix + "dwconv", "depthwise_kernel", depthwise};
  if (expands) {
    if (p == "conv_pw") return conv_spot("expand_conv");
    if (p == "conv_pwl") return conv_spot("project_conv");
    if (p == "bn1") return {prefix + "expand_bn", bn.at(leaf), {}};
    if (p == "bn2") return {prefix + "bn", bn.at(leaf), {}};
    if (p == "bn3") return {prefix + "project_bn", bn.at(leaf), {}};
  } else {
    if (p == "conv_pw") return conv_spot("project_conv");
    if (p == "bn1") return {prefix + "bn", bn.at(leaf), {}};
    if (p == "bn2") return {prefix + "project_bn", bn.at(leaf), {}};
  }
  ADD_FAILURE() << "no Keras spot for " << name;
  return {};
}

// Ours -> Keras layout.
std::vector<float> to_keras(const std::vector<float>& ours, const std::vector<int64_t>& dims,
                            const std::vector<int>& perm, std::vector<int64_t>& keras_dims) {
  keras_dims = dims;
  if (perm.empty()) return ours;
  for (size_t k = 0; k < perm.size(); ++k) keras_dims[size_t(perm[k])] = dims[k];
  std::vector<int64_t> keras_strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) keras_strides[i - 1] = keras_strides[i] * keras_dims[i];
  std::vector<float> out(ours.size());
  std::vector<int64_t> index(dims.size(), 0);
  for (size_t o = 0; o < ours.size(); ++o) {
    int64_t target = 0;
    for (size_t k = 0; k < dims.size(); ++k) target += index[k] * keras_strides[size_t(perm[k])];
    out[size_t(target)] = ours[o];
    for (size_t k = dims.size(); k-- > 0;) {
      if (++index[k] < dims[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

// Fixed-length byte-string array attribute, as h5py writes numpy 'S' arrays.
void write_strings(hid_t object, const std::string& name, const std::vector<std::string>& values) {
  size_t width = 1;
  for (const std::string& v : values) width = std::max(width, v.size());
  std::vector<char> buffer(width * values.size(), '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buffer.data() + i * width, values[i].data(), values[i].size());
  // Keras writes an empty list as an empty float64 array (np.asarray([])).
  Hdf5Handle type(values.empty() ? H5Tcopy(H5T_IEEE_F64LE) : H5Tcopy(H5T_C_S1), H5Tclose);
  if (values.empty()) {
    const hsize_t zero = 0;
    Hdf5Handle space(H5Screate_simple(1, &zero, nullptr), H5Sclose);
    Hdf5Handle attribute(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    ASSERT_TRUE(attribute.valid()) << name;
    return;
  }
  ASSERT_GE(H5Tset_size(type.get(), width), 0);
  ASSERT_GE(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), 0);
  const hsize_t count = values.size();
  Hdf5Handle space(H5Screate_simple(1, &count, nullptr), H5Sclose);
  Hdf5Handle attribute(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ASSERT_TRUE(attribute.valid()) << name;
  if (!values.empty()) {
    ASSERT_GE(H5Awrite(attribute.get(), type.get(), buffer.data()), 0);
  }
}

struct KerasWeightData {
  std::string leaf;
  std::vector<int64_t> dims;
  std::vector<float> values;
  bool as_int32 = false;
};

struct FixtureOptions {
  bool under_model_weights = false;
  bool split_layer_names = false;
  std::string classifier = "predictions";  // "" = notop
  bool normalization = false;
  bool extra_layer = false;  // a weighted layer no EfficientNet has
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
  // Lets a test damage one weight (shape, dtype) or drop a layer (return false).
  std::function<bool(const std::string& layer, KerasWeightData&)> edit;
  // Datasets of the right shapes without data (HDF5 allocates none): arch inference of B7-sized
  // files without writing their 66M values.
  bool shapes_only = false;
};

// Writes the model's tensors as a Keras legacy weight file.
void write_keras_file(const std::string& path, nn::EfficientNet& model, const FixtureOptions& o) {
  std::vector<std::string> order{"input_1", "rescaling"};
  std::map<std::string, std::vector<KerasWeightData>> layers;
  if (o.normalization) {
    order.push_back("normalization");
    layers["normalization"] = {{"mean", {3}, {o.mean.begin(), o.mean.end()}},
                               {"variance", {3}, {o.std.begin(), o.std.end()}},
                               {"count", {}, {0.0f}, true}};
  }
  order.push_back("stem_conv_pad");
  for (const NamedTensor& t : named_tensors(model.parameters(), model.buffers())) {
    if (o.classifier.empty() && t.name.rfind("classifier.", 0) == 0) continue;
    const KerasSpot spot = keras_spot(t.name, model.layout(), o.classifier);
    KerasWeightData w{spot.leaf, {}, {}};
    if (o.shapes_only) {
      w.dims = t.tensor.shape().dims();
      if (!spot.perm.empty())
        for (size_t k = 0; k < spot.perm.size(); ++k) w.dims[size_t(spot.perm[k])] = t.tensor.shape()[int(k)];
    } else {
      w.values = to_keras(t.tensor.to_floats(), t.tensor.shape().dims(), spot.perm, w.dims);
    }
    if (!layers.count(spot.layer)) {
      order.push_back(spot.layer);
      if (spot.layer.ends_with("bn")) order.push_back(spot.layer.substr(0, spot.layer.size() - 2) + "activation");
    }
    layers[spot.layer].push_back(std::move(w));
  }
  if (!o.classifier.empty()) order.insert(order.end() - 1, {"avg_pool", "top_dropout"});
  if (o.extra_layer) {
    order.push_back("aux_logits");
    layers["aux_logits"] = {{"kernel", {2, 2}, {1, 2, 3, 4}}, {"bias", {2}, {5, 6}}};
  }

  Hdf5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  ASSERT_TRUE(file.valid()) << path;
  Hdf5Handle root = o.under_model_weights
                        ? Hdf5Handle(H5Gcreate2(file.get(), "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose)
                        : Hdf5Handle(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
  ASSERT_TRUE(root.valid());
  std::vector<std::string> names;
  for (const std::string& layer : order) {
    std::vector<KerasWeightData> weights = layers.count(layer) ? layers[layer] : std::vector<KerasWeightData>{};
    bool keep = true;
    if (o.edit)
      for (KerasWeightData& w : weights) keep = keep && o.edit(layer, w);
    if (!keep) continue;
    names.push_back(layer);
    Hdf5Handle group(H5Gcreate2(root.get(), layer.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    ASSERT_TRUE(group.valid()) << layer;
    std::vector<std::string> weight_names;
    if (!weights.empty()) {
      Hdf5Handle inner(H5Gcreate2(group.get(), layer.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const KerasWeightData& w : weights) {
        const std::string dataset_name = w.leaf + ":0";
        weight_names.push_back(layer + "/" + dataset_name);
        const std::vector<hsize_t> dims(w.dims.begin(), w.dims.end());
        Hdf5Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                         H5Sclose);
        const hid_t type = w.as_int32 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
        Hdf5Handle dataset(
            H5Dcreate2(inner.get(), dataset_name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
        ASSERT_TRUE(dataset.valid()) << layer << "/" << dataset_name;
        if (o.shapes_only) continue;
        if (w.as_int32) {
          std::vector<int32_t> ints(w.values.begin(), w.values.end());
          ASSERT_GE(H5Dwrite(dataset.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ints.data()), 0);
        } else {
          ASSERT_GE(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w.values.data()), 0);
        }
      }
    }
    write_strings(group.get(), "weight_names", weight_names);
  }
  if (o.split_layer_names) {
    for (size_t part = 0; part * 40 < names.size(); ++part) {
      const auto begin = names.begin() + std::ptrdiff_t(part * 40);
      const auto end = names.begin() + std::ptrdiff_t(std::min(names.size(), part * 40 + 40));
      write_strings(root.get(), "layer_names" + std::to_string(part), {begin, end});
    }
  } else {
    write_strings(root.get(), "layer_names", names);
  }
  write_strings(root.get(), "backend", {"tensorflow"});
  write_strings(root.get(), "keras_version", {"2.15.0"});
}

// A model with random weights everywhere, running statistics included.
std::unique_ptr<nn::EfficientNet> random_model(const std::string& arch, int64_t outputs, testing::Rng& rng) {
  nn::EfficientNetConfig config = nn::efficientnet_config(arch);
  config.outputs = outputs;
  config.seed = uint64_t(rng.integer(1, 1 << 30));
  auto model = std::make_unique<nn::EfficientNet>(config);
  for (const NamedTensor& t : named_tensors(model->parameters(), model->buffers())) {
    auto* values = static_cast<float*>(t.tensor.data());
    for (int64_t i = 0; i < t.tensor.numel(); ++i) values[i] = rng.uniform(0.1f, 2.0f);
  }
  return model;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_imported(nn::EfficientNet& source, const keras::KerasImport& r, bool notop) {
  std::map<std::string, Tensor> got;
  for (const NamedTensor& t : r.tensors) got[t.name] = t.tensor;
  size_t expected = 0;
  for (const NamedTensor& t : named_tensors(source.parameters(), source.buffers())) {
    if (notop && t.name.rfind("classifier.", 0) == 0) {
      EXPECT_FALSE(got.count(t.name)) << t.name;
      continue;
    }
    ++expected;
    ASSERT_TRUE(got.count(t.name)) << t.name;
    const Tensor& g = got[t.name];
    ASSERT_EQ(g.shape(), t.tensor.shape()) << t.name;
    ASSERT_EQ(g.dtype(), DType::f32) << t.name;
    EXPECT_EQ(std::memcmp(g.data(), t.tensor.data(), t.tensor.nbytes()), 0) << t.name;
  }
  EXPECT_EQ(r.tensors.size(), expected);
  EXPECT_EQ(r.config.padding, Padding::tf_same);
  EXPECT_DOUBLE_EQ(r.config.bn_eps, 1e-3);
  EXPECT_DOUBLE_EQ(r.config.bn_momentum, 0.01);
}

TEST(KerasImport, RootLayoutPredictionsImportsEveryTensorExactlyAndInfersTheArch) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 7, rng);
  const std::string path = dir.file("efficientnetb0.h5");
  write_keras_file(path, *model, {});
  ASSERT_TRUE(keras::is_keras_file(path));
  const keras::KerasImport r = keras::read_keras_weights(path);
  EXPECT_EQ(r.config.arch, "b0");
  EXPECT_EQ(r.config.outputs, 7);
  EXPECT_EQ(r.root, "/");
  EXPECT_EQ(r.classifier_layer, "predictions");
  EXPECT_FALSE(r.has_normalization);
  EXPECT_EQ(r.config.mean, (std::array<float, 3>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(r.config.std, (std::array<float, 3>{0.229f, 0.224f, 0.225f}));
  expect_imported(*model, r, false);
}

TEST(KerasImport, ModelWeightsGroupSplitLayerNamesAndProbs) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b1", 5, rng);
  const std::string path = dir.file("efficientnet-b1.h5");
  FixtureOptions o;
  o.under_model_weights = true;
  o.split_layer_names = true;
  o.classifier = "probs";
  write_keras_file(path, *model, o);
  const keras::KerasImport r = keras::read_keras_weights(path);
  EXPECT_EQ(r.config.arch, "b1");
  EXPECT_EQ(r.root, "/model_weights");
  EXPECT_EQ(r.classifier_layer, "probs");
  expect_imported(*model, r, false);
}

TEST(KerasImport, NormalizationLayerGivesMeanAndStdAndTheWrittenFileLoads) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 4, rng);
  const std::string path = dir.file("keras.h5"), out = dir.file("ours.h5");
  FixtureOptions o;
  o.normalization = true;
  o.mean = {rng.uniform(0.3f, 0.6f), rng.uniform(0.3f, 0.6f), rng.uniform(0.3f, 0.6f)};
  o.std = {rng.uniform(0.2f, 0.3f), rng.uniform(0.2f, 0.3f), rng.uniform(0.2f, 0.3f)};
  write_keras_file(path, *model, o);
  const keras::KerasImport r = keras::import_keras_weights(path, out, {"b0"});
  EXPECT_TRUE(r.has_normalization);
  EXPECT_EQ(r.config.mean, o.mean);
  EXPECT_EQ(r.config.std, o.std);  // the "variance" dataset holds std values
  const WeightFileInfo info = read_weight_file_info(out);
  const nn::EfficientNetConfig config = nn::parse_config_text(info.attributes.arch_config, out);
  EXPECT_EQ(config.padding, Padding::tf_same);
  EXPECT_DOUBLE_EQ(config.bn_eps, 1e-3);
  EXPECT_EQ(config.outputs, 4);
  EXPECT_EQ(config.mean, o.mean);
  EXPECT_EQ(config.std, o.std);
  EXPECT_EQ(info.attributes.user.at("include_top"), "1");
  nn::EfficientNet loaded(config);
  load_weights(out, named_tensors(loaded.parameters(), loaded.buffers()));  // strict
  const auto expected = named_tensors(model->parameters(), model->buffers());
  const auto got = named_tensors(loaded.parameters(), loaded.buffers());
  ASSERT_EQ(expected.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(std::memcmp(got[i].tensor.data(), expected[i].tensor.data(), got[i].tensor.nbytes()), 0) << got[i].name;
}

TEST(KerasImport, NotopFileHasNoClassifier) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 1000, rng);
  const std::string path = dir.file("efficientnetb0_notop.h5"), out = dir.file("ours.h5");
  FixtureOptions o;
  o.classifier = "";
  o.normalization = true;
  write_keras_file(path, *model, o);
  const keras::KerasImport r = keras::import_keras_weights(path, out);
  EXPECT_EQ(r.config.arch, "b0");
  EXPECT_TRUE(r.classifier_layer.empty());
  expect_imported(*model, r, true);
  EXPECT_EQ(read_weight_file_info(out).attributes.user.at("include_top"), "0");
  const keras::KerasInspection i = keras::inspect_keras_file(path);
  EXPECT_EQ(i.arch, "b0");
  EXPECT_TRUE(i.problems.empty());
  EXPECT_TRUE(i.unplaced.empty());
}

// ---- arch inference: every layer's shape against every arch of nn/efficientnet.cpp's table -----

// A model built the ordinary way (independently of the importer's shape list), written as Keras
// datasets of the right shapes without data.
std::string write_arch_file(testing::TempDir& dir, const std::string& arch, const FixtureOptions& base = {}) {
  nn::EfficientNetConfig config = nn::efficientnet_config(arch);
  config.outputs = 5;
  nn::EfficientNet model(config);
  const std::string path = dir.file("keras_" + arch + ".h5");
  FixtureOptions o = base;
  o.shapes_only = true;
  write_keras_file(path, model, o);
  return path;
}

TEST(KerasImportArch, EveryBArchIsInferredFromItsShapes) {
  testing::TempDir dir;
  for (const char* arch : {"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"}) {
    SCOPED_TRACE(arch);
    const std::string path = write_arch_file(dir, arch);
    EXPECT_EQ(keras::infer_keras_arch(path), arch);
    std::filesystem::remove(path);
  }
}

TEST(KerasImportArch, EveryLiteArchIsNamedThenRefused) {
  testing::TempDir dir;
  for (const char* arch : {"lite0", "lite1", "lite2", "lite3", "lite4"}) {
    SCOPED_TRACE(arch);
    const std::string path = write_arch_file(dir, arch);
    EXPECT_EQ(keras::infer_keras_arch(path), arch);
    const std::string message = error_of([&] { keras::read_keras_weights(path); });
    EXPECT_TRUE(contains(message, "the layer shapes are efficientnet-" + std::string(arch) + "'s"));
    EXPECT_TRUE(contains(message, "not Lite"));
  }
}

// B1 and B2 share the stem width (32) and the block count (23): the EfficientNetB2 was
// called B1 and failed on block3a_project_conv.
TEST(KerasImportArch, B2IsNotMistakenForB1) {
  testing::Rng rng;
  testing::TempDir dir;
  for (const char* arch : {"b1", "b2"}) {
    SCOPED_TRACE(arch);
    auto model = random_model(arch, 6, rng);
    const std::string path = dir.file(std::string("efficientnet") + arch + ".h5"), out = dir.file("ours.h5");
    write_keras_file(path, *model, {});
    const keras::KerasImport r = keras::import_keras_weights(path, out);
    EXPECT_EQ(r.config.arch, arch);
    expect_imported(*model, r, false);
    const keras::KerasInspection i = keras::inspect_keras_file(path);
    EXPECT_EQ(i.arch, arch);
    EXPECT_TRUE(i.problems.empty());
  }
}

TEST(KerasImportArch, NoExactMatchNamesTheClosestArchAndTheFirstMismatch) {
  testing::TempDir dir;
  FixtureOptions o;
  o.edit = [](const std::string& layer, KerasWeightData& w) {
    if (layer == "block5a_project_conv" && w.leaf == "kernel") w.dims.back() += 8;
    return true;
  };
  const std::string path = write_arch_file(dir, "b2", o);
  const std::string message = error_of([&] { keras::infer_keras_arch(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "match no EfficientNet"));
  EXPECT_TRUE(contains(message, "closest: efficientnet-b2"));
  EXPECT_TRUE(contains(message, "first mismatch: layer 'block5a_project_conv': kernel has shape (1,1,528,128)"));
  EXPECT_TRUE(contains(message, "efficientnet-b2 expects (1,1,528,120)"));
  EXPECT_TRUE(contains(error_of([&] { keras::read_keras_weights(path); }), "closest: efficientnet-b2"));
  const keras::KerasInspection i = keras::inspect_keras_file(path);
  EXPECT_TRUE(i.arch.empty());
  EXPECT_EQ(i.closest_arch, "b2");
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_TRUE(contains(i.problems[0], "block5a_project_conv"));
}

TEST(KerasImportArch, AFileWithABlockMissingIsNoSmallerArch) {
  // B1 is B0 with more blocks (same widths): every B0 tensor fits a B1 file. Without block6e, the
  // file is neither: B0 has no place for B1's extra blocks, B1 misses block6e.
  testing::TempDir dir;
  nn::EfficientNet b1(nn::efficientnet_config("b1"));
  const std::string path = dir.file("b1_without_block6e.h5");
  FixtureOptions o;
  o.shapes_only = true;
  o.edit = [](const std::string& layer, KerasWeightData&) { return layer.rfind("block6e_", 0) != 0; };
  write_keras_file(path, b1, o);
  const std::string message = error_of([&] { keras::infer_keras_arch(path); });
  EXPECT_TRUE(contains(message, "closest: efficientnet-b1"));
  EXPECT_TRUE(contains(message, "first mismatch: layer 'block6e_expand_conv' is missing"));
}

// ---- bad input -------------------------------------------------------------------------------

TEST(KerasImportBadInput, TruncatedFile) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("truncated.h5");
  write_keras_file(path, *model, {});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "truncated"));
}

TEST(KerasImportBadInput, NonHdf5File) {
  testing::TempDir dir;
  const std::string path = dir.file("weights.h5");
  std::ofstream(path) << "not an HDF5 file at all\n";
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "not an HDF5 file"));
  EXPECT_FALSE(keras::is_keras_file(path));
}

TEST(KerasImportBadInput, B3FileImportedAsB0NamesTheStem) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b3", 2, rng);
  const std::string path = dir.file("efficientnetb3.h5");
  write_keras_file(path, *model, {});
  EXPECT_EQ(keras::read_keras_weights(path).config.arch, "b3");  // inferred
  const std::string message = error_of([&] { keras::read_keras_weights(path, {"b0"}); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "layer 'stem_conv'"));
  EXPECT_TRUE(contains(message, "(3,3,3,40)"));
  EXPECT_TRUE(contains(message, "(3,3,3,32)"));
}

TEST(KerasImportBadInput, MissingLayer) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("missing.h5");
  FixtureOptions o;
  o.edit = [](const std::string& layer, KerasWeightData&) { return layer != "block3b_dwconv"; };
  write_keras_file(path, *model, o);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "layer 'block3b_dwconv' is missing"));
}

TEST(KerasImportBadInput, WrongShape) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("shape.h5");
  FixtureOptions o;
  o.edit = [](const std::string& layer, KerasWeightData& w) {
    if (layer == "block4a_project_conv" && w.leaf == "kernel") {
      w.dims.back() += 1;
      w.values.resize(w.values.size() / size_t(w.dims.back() - 1) * size_t(w.dims.back()), 0.0f);
    }
    return true;
  };
  write_keras_file(path, *model, o);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "layer 'block4a_project_conv': kernel has shape (1,1,240,81)"));
  EXPECT_TRUE(contains(message, "expects (1,1,240,80)"));
  const keras::KerasInspection i = keras::inspect_keras_file(path);
  ASSERT_EQ(i.problems.size(), 1u);
  EXPECT_TRUE(contains(i.problems[0], "block4a_project_conv"));
}

TEST(KerasImportBadInput, IntegerKernel) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("int.h5");
  FixtureOptions o;
  o.edit = [](const std::string& layer, KerasWeightData& w) {
    if (layer == "block2a_expand_conv" && w.leaf == "kernel") w.as_int32 = true;
    return true;
  };
  write_keras_file(path, *model, o);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "layer 'block2a_expand_conv'"));
  EXPECT_TRUE(contains(message, "integer of 4 bytes"));
}

TEST(KerasImportBadInput, ExtraLayerIsReportedAsUnplaced) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("extra.h5");
  FixtureOptions o;
  o.extra_layer = true;
  write_keras_file(path, *model, o);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "2 Keras weight(s) match no tensor of efficientnet-b0, first in layer 'aux_logits'"));
  EXPECT_TRUE(contains(message, "aux_logits/aux_logits/kernel:0, aux_logits/aux_logits/bias:0"));
  const keras::KerasInspection i = keras::inspect_keras_file(path);
  EXPECT_TRUE(i.problems.empty());
  EXPECT_EQ(i.unplaced.size(), 2u);
}

TEST(KerasImportBadInput, MissingWeightOfALayer) {
  testing::Rng rng;
  testing::TempDir dir;
  auto model = random_model("b0", 3, rng);
  const std::string path = dir.file("extra.h5");
  FixtureOptions o;
  o.edit = [](const std::string& layer, KerasWeightData& w) {
    if (layer == "top_bn" && w.leaf == "beta") w.leaf = "offset";  // beta missing, offset unplaced
    return true;
  };
  write_keras_file(path, *model, o);
  const std::string message = error_of([&] { keras::read_keras_weights(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "layer 'top_bn' has no weight 'beta'"));
}

}  // namespace
}  // namespace sg
