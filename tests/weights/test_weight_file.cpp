// Weight files: bit-exact round trips of every dtype, the documented layout, strict and partial
// loading with every mismatch reported, bad files, and the temporary-name-then-rename write.
#include <gtest/gtest.h>

#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "core/atomic_file.h"
#include "nn/parameter.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/atomic_hdf5_write.h"
#include "weights/hdf5_file.h"
#include "weights/hdf5_tensor.h"
#include "weights/weight_file.h"

namespace sg {
namespace {

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\"\n does not contain \"" << part << "\"";
}

// Random bytes: every bit pattern (NaN payloads, denormals, infinities) must survive.
Tensor random_bits(testing::Rng& rng, Shape shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  auto* bytes = static_cast<unsigned char*>(t.data());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(rng.integer(0, 255));
  return t;
}

void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  // (memcmp with the null data of an empty tensor is undefined, even for 0 bytes: UBSan says so.)
  if (a.nbytes() > 0) {
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
  }
}

// (Designated initialisers that omit fields warn under -Wextra.)
LoadOptions converting() {
  LoadOptions options;
  options.convert_floating = true;
  return options;
}
LoadOptions partial() {
  LoadOptions options;
  options.partial = true;
  return options;
}
LoadOptions for_arch(const std::string& arch) {
  LoadOptions options;
  options.expected_arch_config = arch;
  return options;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A model-like set of tensors of every dtype, including a scalar and an empty tensor.
std::vector<NamedTensor> sample_model(testing::Rng& rng) {
  return {
      {"stem.conv.weight", random_bits(rng, {8, 3, 3, 3}, DType::f32)},
      {"blocks.0.0.dw.weight", random_bits(rng, {8, 3, 3, 1}, DType::f16)},
      {"blocks.0.0.bn.running_var", random_bits(rng, {8}, DType::bf16)},
      {"blocks.0.0.bn.num_batches", random_bits(rng, {}, DType::i32)},
      {"head.class_map", random_bits(rng, {5}, DType::u8)},
      {"head.empty", random_bits(rng, {0, 4}, DType::f32)},
  };
}

std::vector<NamedTensor> empty_like(const std::vector<NamedTensor>& tensors) {
  std::vector<NamedTensor> out;
  for (const NamedTensor& t : tensors) {
    Tensor fresh = Tensor::zeros(t.tensor.shape(), t.tensor.dtype());
    out.push_back({t.name, fresh});
  }
  return out;
}

TEST(WeightFile, RoundTripKeepsEveryDtypeBitExact) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  const std::string path = dir.file("model.h5");
  const std::vector<NamedTensor> model = sample_model(rng);
  save_weights(path, model, {"arch=b0 outputs=6", {{"source", "test"}, {"commit", "abc123"}}});

  const std::vector<NamedTensor> loaded = empty_like(model);
  const LoadReport report = load_weights(path, loaded);
  EXPECT_EQ(report.loaded.size(), model.size());
  EXPECT_TRUE(report.missing.empty() && report.skipped.empty() && report.mismatched.empty());
  for (size_t i = 0; i < model.size(); ++i) expect_same_bits(model[i].tensor, loaded[i].tensor, model[i].name);

  const WeightFileInfo info = read_weight_file_info(path);
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.attributes.arch_config, "arch=b0 outputs=6");
  EXPECT_EQ(info.attributes.user, (std::map<std::string, std::string>{{"commit", "abc123"}, {"source", "test"}}));
  EXPECT_FALSE(info.is_checkpoint);
  ASSERT_EQ(info.tensors.size(), model.size());
  for (const StoredTensor& t : info.tensors) {
    const auto it = std::find_if(model.begin(), model.end(), [&](const NamedTensor& m) { return m.name == t.name; });
    ASSERT_NE(it, model.end()) << t.name;
    EXPECT_EQ(t.shape, it->tensor.shape()) << t.name;
    EXPECT_EQ(t.dtype, it->tensor.dtype()) << t.name;
  }
  // The temporary file is gone.
  EXPECT_TRUE(temporaries_of(path).empty());
}

TEST(WeightFile, LayoutIsTheDocumentedOne) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::string path = dir.file("layout.h5");
  save_weights(path, sample_model(rng), {"cfg", {}});

  Hdf5Handle file = h5::open_file_for_reading(path);
  EXPECT_EQ(h5::read_string_attribute(file.get(), "format", path), "slidegrade-weights");
  EXPECT_EQ(h5::read_int_attribute(file.get(), "format_version", path), 1);
  EXPECT_EQ(h5::read_string_attribute(file.get(), "arch_config", path), "cfg");
  Hdf5Handle model = h5::open_group(file.get(), "model", path);
  // Dotted names are dataset names directly under /model.
  Hdf5Handle dataset(H5Dopen2(model.get(), "blocks.0.0.bn.running_var", H5P_DEFAULT), H5Dclose);
  ASSERT_TRUE(dataset.valid());
  EXPECT_EQ(h5::read_string_attribute(dataset.get(), "dtype", path), "bf16");
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  EXPECT_GT(H5Tequal(type.get(), H5T_STD_U16LE), 0) << "bf16 is stored as uint16";
  Hdf5Handle half(H5Dopen2(model.get(), "blocks.0.0.dw.weight", H5P_DEFAULT), H5Dclose);
  Hdf5Handle half_type(H5Dget_type(half.get()), H5Tclose);
  EXPECT_EQ(H5Tget_class(half_type.get()), H5T_FLOAT);
  EXPECT_EQ(H5Tget_size(half_type.get()), 2u);

  // The pre-existing float reader (HDF5's own conversion) reads our f32 and f16 datasets.
  Hdf5File reader(path, Hdf5File::Mode::read);
  EXPECT_EQ(reader.read_string_attribute("/", "format"), "slidegrade-weights");  // UTF-8 strings
  EXPECT_EQ(reader.read_int_attribute("/", "format_version"), 1);
  const FloatArray values = reader.read_floats("/model/stem.conv.weight");
  EXPECT_EQ(values.shape, (std::vector<int64_t>{8, 3, 3, 3}));
}

TEST(WeightFile, ConvertsBetweenFloatingDtypesOnlyWhenAsked) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  testing::TempDir dir;
  const std::string path = dir.file("f32.h5");
  Tensor master = testing::random_tensor(rng, {4, 7}, DType::f32);
  save_weights(path, {{"w", master}}, {});

  for (DType dtype : {DType::f16, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    Tensor low = Tensor::zeros({4, 7}, dtype);
    const std::string error = error_of([&] { load_weights(path, {{"w", low}}); });
    EXPECT_TRUE(contains(error, path));
    EXPECT_TRUE(contains(error, "w: file has dtype f32, model expects " + std::string(dtype_name(dtype))));
    load_weights(path, {{"w", low}}, converting());
    expect_same_bits(low, Tensor::from_floats(master.to_floats(), {4, 7}, dtype), "f32 -> low");

    // And back: the low-precision file widens exactly to f32.
    const std::string low_path = dir.file("low.h5");
    save_weights(low_path, {{"w", low}}, {});
    Tensor wide = Tensor::zeros({4, 7}, DType::f32);
    load_weights(low_path, {{"w", wide}}, converting());
    EXPECT_EQ(wide.to_floats(), low.to_floats());
  }
  // Integers never convert.
  Tensor integers = Tensor::zeros({4, 7}, DType::i32);
  EXPECT_TRUE(contains(error_of([&] { load_weights(path, {{"w", integers}}, converting()); }),
              "w: file has dtype f32, model expects i32"));
}

TEST(WeightFile, StrictLoadReportsEveryMismatchAndChangesNothing) {
  testing::TempDir dir;
  const std::string path = dir.file("old.h5");
  save_weights(path,
               {{"stem.conv.weight", Tensor::from_floats({1, 2, 3, 4}, {4})},
                {"blocks.3.1.dw.weight", Tensor::zeros({96, 3, 3, 1}, DType::f32)},
                {"head.old.weight", Tensor::zeros({10, 4}, DType::f32)}},
               {});
  Tensor stem = Tensor::from_floats({9, 9, 9, 9}, {4});
  const std::vector<NamedTensor> model = {{"stem.conv.weight", stem},
                                          {"blocks.3.1.dw.weight", Tensor::zeros({144, 3, 3, 1}, DType::f32)},
                                          {"head.fc.bias", Tensor::zeros({6}, DType::f32)}};
  const std::string error = error_of([&] { load_weights(path, model); });
  EXPECT_TRUE(contains(error, path + ": the weights do not match the model (3 problems):"));
  EXPECT_TRUE(contains(error, "blocks.3.1.dw.weight: file has [96, 3, 3, 1], model expects [144, 3, 3, 1]"));
  EXPECT_TRUE(contains(error, "missing: head.fc.bias (model expects f32 [6])"));
  EXPECT_TRUE(contains(error, "unexpected: head.old.weight (file has f32 [10, 4])"));
  EXPECT_FALSE(contains(error, "stem.conv.weight"));
  // Nothing was loaded: the matching tensor keeps its value.
  EXPECT_EQ(stem.to_floats(), (std::vector<float>{9, 9, 9, 9}));
}

TEST(WeightFile, PartialLoadReportsLoadedSkippedAndMissing) {
  testing::TempDir dir;
  const std::string path = dir.file("pretrained.h5");
  save_weights(path,
               {{"stem.conv.weight", Tensor::from_floats({1, 2, 3, 4}, {4})},
                {"head.fc.weight", Tensor::zeros({1000, 4}, DType::f32)},
                {"head.aux.weight", Tensor::zeros({3}, DType::f32)}},
               {});
  Tensor stem = Tensor::zeros({4}, DType::f32);
  const std::vector<NamedTensor> model = {{"stem.conv.weight", stem},
                                          {"head.fc.weight", Tensor::zeros({6, 4}, DType::f32)},
                                          {"head.fc.bias", Tensor::zeros({6}, DType::f32)}};
  const LoadReport report = load_weights(path, model, partial());
  EXPECT_EQ(report.loaded, (std::vector<std::string>{"stem.conv.weight"}));
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"head.aux.weight"}));
  EXPECT_EQ(report.missing, (std::vector<std::string>{"head.fc.bias"}));
  EXPECT_EQ(report.mismatched, (std::vector<std::string>{"head.fc.weight: file has [1000, 4], model expects [6, 4]"}));
  EXPECT_EQ(stem.to_floats(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(WeightFile, BadFilesGiveClearErrors) {
  testing::Rng rng;
  testing::TempDir dir;
  const std::vector<NamedTensor> model = sample_model(rng);
  const std::vector<NamedTensor> target = empty_like(model);

  const std::string absent = dir.file("absent.h5");
  EXPECT_EQ(error_of([&] { load_weights(absent, target); }), absent + ": no such file");

  const std::string text = dir.file("notes.h5");
  std::ofstream(text) << "these are not weights\n";
  EXPECT_EQ(error_of([&] { load_weights(text, target); }),
            text + ": not an HDF5 file (no HDF5 signature; empty or truncated?)");

  const std::string good = dir.file("good.h5");
  save_weights(good, model, {});
  const std::string truncated = dir.file("truncated.h5");
  std::filesystem::copy_file(good, truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(good) / 2);
  EXPECT_EQ(error_of([&] { load_weights(truncated, target); }),
            detail::concat(truncated, ": truncated: ", std::filesystem::file_size(good) / 2, " bytes on disk, but ",
                           std::filesystem::file_size(good),
                           " were written (an interrupted write, copy or download?); use the previous checkpoint or "
                           "download it again"));
  std::filesystem::resize_file(truncated, 0);
  EXPECT_TRUE(contains(error_of([&] { load_weights(truncated, target); }), truncated + ": not an HDF5 file"));

  // An HDF5 file of another kind: no format attribute.
  const std::string foreign = dir.file("foreign.h5");
  {
    Hdf5File file(foreign, Hdf5File::Mode::create);
    const float values[2] = {1, 2};
    file.write_floats("model/stem.conv.weight", {2}, values);
  }
  EXPECT_EQ(error_of([&] { load_weights(foreign, target); }),
            foreign + ": not a slidegrade weights file (no \"format\" attribute; expected format = "
                      "\"slidegrade-weights\")");
  EXPECT_TRUE(contains(error_of([&] { read_weight_file_info(foreign); }), "no \"format\" attribute"));

  // Another format name, then a newer version.
  {
    Hdf5Handle file(H5Fopen(foreign.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_TRUE(file.valid());
    h5::write_string_attribute(file.get(), "format", "keras", foreign);
  }
  EXPECT_EQ(error_of([&] { load_weights(foreign, target); }),
            foreign + ": format is \"keras\", expected \"slidegrade-weights\"");
  {
    Hdf5Handle file(H5Fopen(foreign.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    h5::write_string_attribute(file.get(), "format", "slidegrade-weights", foreign);
    h5::write_int_attribute(file.get(), "format_version", 2, foreign);
  }
  EXPECT_EQ(error_of([&] { load_weights(foreign, target); }),
            foreign + ": format_version 2 is not one this build reads (1 to 1)");
}

TEST(WeightFile, ArchConfigIsCheckedWhenGiven) {
  testing::TempDir dir;
  const std::string path = dir.file("b3.h5");
  Tensor w = Tensor::zeros({2}, DType::f32);
  save_weights(path, {{"w", w}}, {"arch=b3", {}});
  EXPECT_NO_THROW(load_weights(path, {{"w", w}}, for_arch("arch=b3")));
  EXPECT_EQ(error_of([&] { load_weights(path, {{"w", w}}, for_arch("arch=b0")); }),
            path + ": written for arch_config \"arch=b3\", the model is \"arch=b0\"");
}

TEST(WeightFile, InvalidNamesAndAttributesAreRefusedBeforeWriting) {
  testing::TempDir dir;
  const std::string path = dir.file("bad.h5");
  Tensor w = Tensor::zeros({2}, DType::f32);
  EXPECT_EQ(error_of([&] { save_weights(path, {{"w", w}, {"w", w}}, {}); }),
            path + ": tensor name \"w\" appears twice");
  EXPECT_TRUE(contains(error_of([&] { save_weights(path, {{"a/b", w}}, {}); }), "tensor name \"a/b\" is not allowed"));
  EXPECT_TRUE(contains(error_of([&] { save_weights(path, {{"w", w}}, {"", {{"format", "x"}}}); }),
              "user attribute \"format\" is reserved"));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(temporaries_of(path).empty());
}

TEST(WeightFile, NamedTensorsShareTheModelsStorage) {
  testing::TempDir dir;
  const std::string path = dir.file("params.h5");
  std::vector<nn::Parameter> parameters(1);
  parameters[0].name = "head.fc.weight";
  parameters[0].value = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3});
  nn::Buffer buffer{"bn.running_mean", Tensor::from_floats({7, 8}, {2})};
  std::vector<nn::Buffer*> buffers = {&buffer};
  save_weights(path, named_tensors(parameters, buffers), {});

  parameters[0].value.zero_();
  buffer.value.zero_();
  const std::vector<NamedTensor> view = named_tensors(parameters, buffers);
  ASSERT_EQ(view.size(), 2u);
  EXPECT_EQ(view[0].name, "head.fc.weight");
  EXPECT_EQ(view[1].name, "bn.running_mean");
  load_weights(path, view);
  EXPECT_EQ(parameters[0].value.to_floats(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(buffer.value.to_floats(), (std::vector<float>{7, 8}));
}

TEST(AtomicWrite, FinalPathAppearsOnlyWhenTheWriteCompletes) {
  testing::TempDir dir;
  const std::string path = dir.file("atomic.h5");
  bool checked = false;
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_int_attribute(file, "x", 1, path);
    EXPECT_FALSE(std::filesystem::exists(path));
    // The file is built in memory: nothing is on disk until its image is complete.
    EXPECT_TRUE(temporaries_of(path).empty());
    checked = true;
  });
  EXPECT_TRUE(checked);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(temporaries_of(path).empty());
}

TEST(AtomicWrite, FailedWriteLeavesThePreviousFileIntact) {
  testing::TempDir dir;
  const std::string path = dir.file("model.h5");
  save_weights(path, {{"w", Tensor::from_floats({1, 2}, {2})}}, {"v1", {}});

  // While a new version is being written, the old one is still complete under the final name.
  h5::write_atomically(path, [&](hid_t) {
    Tensor during = Tensor::zeros({2}, DType::f32);
    load_weights(path, {{"w", during}});
    EXPECT_EQ(during.to_floats(), (std::vector<float>{1, 2}));
  });

  // A tensor whose write throws (undefined): the old file stays, the temporary file goes.
  save_weights(path, {{"w", Tensor::from_floats({1, 2}, {2})}}, {"v1", {}});
  const std::string error = error_of([&] {
    save_weights(path, {{"w", Tensor::from_floats({3, 4}, {2})}, {"broken", Tensor()}}, {"v2", {}});
  });
  EXPECT_EQ(error, path + ": tensor \"broken\" is undefined (no storage), cannot write it");
  Tensor w = Tensor::zeros({2}, DType::f32);
  load_weights(path, {{"w", w}});
  EXPECT_EQ(w.to_floats(), (std::vector<float>{1, 2}));
  EXPECT_EQ(read_weight_file_info(path).attributes.arch_config, "v1");
  EXPECT_TRUE(temporaries_of(path).empty());

  // A failure inside the writer's callback behaves the same.
  EXPECT_THROW(h5::write_atomically(path, [](hid_t) { throw Error("disk on fire"); }), Error);
  EXPECT_EQ(read_weight_file_info(path).attributes.arch_config, "v1");
  EXPECT_TRUE(temporaries_of(path).empty());
}

TEST(AtomicWrite, MissingFolderIsAClearError) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "no-such-folder" / "model.h5").string();
  const std::string error = error_of([&] { save_weights(path, {{"w", Tensor::zeros({2}, DType::f32)}}, {}); });
  EXPECT_TRUE(contains(error, path + ": cannot create the temporary file"));
  EXPECT_TRUE(contains(error, "does the folder exist"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "no-such-folder"));
}

}  // namespace
}  // namespace sg
