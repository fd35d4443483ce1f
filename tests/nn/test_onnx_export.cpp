// The ONNX export (Module::export_onnx, nn/onnx_graph.h; infer/onnx_export.h), read back with ONNX's
// own protobuf classes: inputs and outputs, every parameter stored once under its name with its
// values in ONNX's layout, the ops each module variant writes, the metadata, and the refusals.
// The numbers a runtime computes from these files are checked against `slidegrade forward` with ONNX
// Runtime in tests/python/test_onnx_export.py.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/half.h"
#include "grading/model_card.h"
#include "infer/onnx_export.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"
#include "weights/checkpoint_file.h"
#include "weights/weight_file.h"

namespace sg::nn {
namespace {

// A small network of the arch's kind: every block type, a quarter of the width, one block a stage.
EfficientNetConfig tiny_config(const std::string& arch) {
  EfficientNetConfig c = efficientnet_config(arch);
  c.width = 0.25;
  c.depth = 0.25;
  c.outputs = 5;
  c.seed = 3;
  return c;
}

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

std::vector<float> initializer_floats(const onnx::TensorProto& t) {
  const std::string& raw = t.raw_data();
  std::vector<float> values;
  if (t.data_type() == onnx::TensorProto::FLOAT) {
    values.resize(raw.size() / sizeof(float));
    std::memcpy(values.data(), raw.data(), raw.size());
  } else {
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT16) << t.name();
    for (size_t i = 0; i + 1 < raw.size(); i += 2) {
      uint16_t h = 0;
      std::memcpy(&h, raw.data() + i, 2);
      values.push_back(half_bits_to_float(h));
    }
  }
  return values;
}

std::vector<int64_t> dims_of(const onnx::ValueInfoProto& info, std::vector<std::string>* symbols) {
  std::vector<int64_t> dims;
  for (const auto& d : info.type().tensor_type().shape().dim()) {
    dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    if (!d.has_dim_value() && symbols) symbols->push_back(d.dim_param());
  }
  return dims;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& node : model.graph().node()) ++counts[node.op_type()];
  return counts;
}

std::string metadata(const onnx::ModelProto& model, const std::string& key) {
  for (const auto& entry : model.metadata_props())
    if (entry.key() == key) return entry.value();
  return "<missing>";
}

TEST(OnnxExport, EveryParameterOnceUnderItsNameInOnnxLayout) {
  for (const std::string arch : {"b0", "lite0"}) {
    SCOPED_TRACE(arch);
    EfficientNet model(tiny_config(arch));
    model.set_training(false);
    testing::TempDir dir;
    const std::string path = dir.file("model.onnx");
    const infer::OnnxExportReport report = infer::export_onnx(model, {}, path, {});
    const onnx::ModelProto onnx_model = read_model(path);
    EXPECT_EQ(report.nodes, onnx_model.graph().node_size());
    EXPECT_EQ(report.initializers, onnx_model.graph().initializer_size());

    std::map<std::string, const onnx::TensorProto*> initializers;
    for (const auto& t : onnx_model.graph().initializer()) initializers[t.name()] = &t;
    size_t stored = 0;
    auto check = [&](const std::string& name, const Tensor& value) {
      SCOPED_TRACE(name);
      const auto it = initializers.find(name);
      ASSERT_NE(it, initializers.end());
      ++stored;
      const std::vector<float> got = initializer_floats(*it->second);
      const std::vector<float> want = value.to_floats();
      ASSERT_EQ(got.size(), want.size());
      std::vector<int64_t> dims(it->second->dims().begin(), it->second->dims().end());
      if (value.shape().rank() == 4 && dims[2] > 1) {
        // A convolution's OHWI weight, stored OIHW: compare element by element through both layouts.
        const int64_t o = dims[0], i = dims[1], k = dims[2];
        ASSERT_EQ(value.shape()[1], k);
        ASSERT_EQ(value.shape()[3], i);
        for (int64_t a = 0; a < o; ++a)
          for (int64_t c = 0; c < i; ++c)
            for (int64_t y = 0; y < k; ++y)
              for (int64_t x = 0; x < k; ++x)
                ASSERT_EQ(got[size_t(((a * i + c) * k + y) * k + x)], want[size_t(((a * k + y) * k + x) * i + c)]);
      } else {
        ASSERT_EQ(got, want);
      }
    };
    for (Parameter* p : model.parameters()) check(p->name, p->value);
    for (Buffer* b : model.buffers()) check(b->name, b->value);
    EXPECT_EQ(stored, model.parameters().size() + model.buffers().size());
    // Nothing else is stored but scalar constants (ReLU6's Clip bounds).
    EXPECT_GE(initializers.size(), stored);
    std::set<std::string> parameter_names;
    for (Parameter* p : model.parameters()) parameter_names.insert(p->name);
    for (Buffer* b : model.buffers()) parameter_names.insert(b->name);
    for (const auto& [name, t] : initializers)
      if (!parameter_names.count(name)) EXPECT_EQ(t->dims_size(), 0) << name;
  }
}

TEST(OnnxExport, InputsOutputsAndOpsFollowTheOptions) {
  EfficientNet model(tiny_config("b0"));
  model.set_training(false);
  const size_t blocks = model.blocks().size();
  testing::TempDir dir;
  struct Case {
    infer::OnnxLayout layout;
    int64_t batch;
    int64_t opset;
    DType precision;
  };
  for (const Case& c :
       {Case{infer::OnnxLayout::nhwc, 0, 17, DType::f32}, Case{infer::OnnxLayout::nchw, 4, 13, DType::f32},
        Case{infer::OnnxLayout::nhwc, 2, 15, DType::f16}}) {
    SCOPED_TRACE(
        detail::concat("layout ", int(c.layout), " batch ", c.batch, " opset ", c.opset, " ", dtype_name(c.precision)));
    infer::OnnxExportOptions options;
    options.layout = c.layout;
    options.batch = c.batch;
    options.opset = c.opset;
    options.precision = c.precision;
    const std::string path = dir.file("model.onnx");
    infer::export_onnx(model, {}, path, options);
    const onnx::ModelProto m = read_model(path);
    EXPECT_EQ(m.opset_import(0).version(), c.opset);
    ASSERT_EQ(m.graph().input_size(), 1);
    ASSERT_EQ(m.graph().output_size(), 1);
    EXPECT_EQ(m.graph().input(0).name(), "image");
    EXPECT_EQ(m.graph().output(0).name(), "logits");
    EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
    EXPECT_EQ(m.graph().output(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
    std::vector<std::string> symbols;
    const std::vector<int64_t> in = dims_of(m.graph().input(0), &symbols);
    const int64_t n = c.batch == 0 ? -1 : c.batch;
    const std::vector<int64_t> want_in =
        c.layout == infer::OnnxLayout::nhwc ? std::vector<int64_t>{n, -1, -1, 3} : std::vector<int64_t>{n, 3, -1, -1};
    EXPECT_EQ(in, want_in);
    const std::vector<std::string> want_symbols = c.batch == 0 ? std::vector<std::string>{"batch", "height", "width"}
                                                               : std::vector<std::string>{"height", "width"};
    EXPECT_EQ(symbols, want_symbols);
    EXPECT_EQ(dims_of(m.graph().output(0), nullptr), (std::vector<int64_t>{n, 5}));
    for (const auto& t : m.graph().initializer())
      EXPECT_EQ(t.data_type(), c.precision == DType::f16 ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT)
          << t.name();

    std::map<std::string, int> ops = op_counts(m);
    // Stem, head and every block's convolutions (expand where the ratio is not 1, depthwise,
    // project) and the SE pair in each block.
    int convs = 2;
    for (const auto& block : model.blocks()) convs += (block->expand_conv() ? 3 : 2) + 2;
    EXPECT_EQ(ops["Conv"], convs);
    EXPECT_EQ(ops["BatchNormalization"], convs - 2 * int(blocks));
    EXPECT_EQ(ops["Transpose"], c.layout == infer::OnnxLayout::nhwc ? 1 : 0);
    EXPECT_EQ(ops["Cast"], c.precision == DType::f16 ? 2 : 0);
    EXPECT_EQ(ops["Gemm"], 1);
    int residuals = 0;
    for (const auto& block : model.blocks()) residuals += block->has_residual() ? 1 : 0;
    EXPECT_EQ(ops["Add"], residuals);
    EXPECT_EQ(metadata(m, "slidegrade.model_card"), "none (a plain network: no grading head or tiling)");
    EXPECT_EQ(metadata(m, "slidegrade.arch_config"), config_text(model.config()));
  }
}

TEST(OnnxExport, ActivationsPaddingAndPoolingsWriteTheirOps) {
  struct Case {
    const char* arch;
    math::Activation activation;
    HeadPooling pooling;
    const char* op;  // one op that only this case writes
  };
  for (const Case& c : {Case{"b0", math::Activation::mish, HeadPooling::gem, "Softplus"},
                        Case{"lite0", math::Activation::relu6, HeadPooling::avg_max, "Clip"},
                        Case{"b0", math::Activation::relu, HeadPooling::max, "Relu"}}) {
    SCOPED_TRACE(c.op);
    EfficientNetConfig config = tiny_config(c.arch);
    config.activation = c.activation;
    config.pooling = c.pooling;
    EfficientNet model(config);
    model.set_training(false);
    testing::TempDir dir;
    infer::export_onnx(model, {}, dir.file("m.onnx"), {});
    const onnx::ModelProto m = read_model(dir.file("m.onnx"));
    std::map<std::string, int> ops = op_counts(m);
    EXPECT_GT(ops[c.op], 0);
    EXPECT_EQ(ops["GlobalMaxPool"], c.pooling == HeadPooling::max || c.pooling == HeadPooling::avg_max ? 1 : 0);
    EXPECT_EQ(ops["Pow"], c.pooling == HeadPooling::gem ? 2 : 0);
    EXPECT_EQ(ops["Concat"], c.pooling == HeadPooling::avg_max ? 1 : 0);
    // TF-SAME (Lite) is ONNX's SAME_UPPER, so the file takes any input size; symmetric padding is explicit.
    for (const auto& node : m.graph().node()) {
      if (node.op_type() != "Conv") continue;
      bool auto_pad = false;
      for (const auto& a : node.attribute()) auto_pad = auto_pad || (a.name() == "auto_pad" && a.s() == "SAME_UPPER");
      if (config.padding == Padding::tf_same) {
        EXPECT_TRUE(auto_pad || node.name().find("conv_reduce") != std::string::npos ||
                    node.name().find("conv_expand") != std::string::npos)
            << node.name();
      } else {
        EXPECT_FALSE(auto_pad) << node.name();
      }
    }
  }
}

TEST(OnnxExport, TrainedModelCardGoesIntoTheMetadata) {
  EfficientNetConfig config = tiny_config("b0");
  config.outputs = 5;
  EfficientNet model(config);
  testing::TempDir dir;
  WeightAttributes attributes;
  attributes.arch_config = config_text(config);
  grading::ModelCard card;
  card.head = grading::HeadKind::binned;
  card.tiles.count = 16;
  card.tiles.size = 128;
  card.tiles.level = 1;
  card.invert = true;
  card.epoch = 3;
  grading::write_model_card(card, attributes);
  save_weights(dir.file("best.h5"), named_tensors(model.parameters(), model.buffers()), attributes);
  const infer::OnnxExportReport report = infer::export_onnx(dir.file("best.h5"), dir.file("best.onnx"), {});
  EXPECT_TRUE(report.model_card);
  const onnx::ModelProto m = read_model(dir.file("best.onnx"));
  EXPECT_EQ(metadata(m, "slidegrade.model_card"), "yes");
  EXPECT_EQ(metadata(m, "slidegrade.card.head"), "binned");
  EXPECT_EQ(metadata(m, "slidegrade.card.tiles"), "16");
  EXPECT_EQ(metadata(m, "slidegrade.card.tile_size"), "128");
  EXPECT_EQ(metadata(m, "slidegrade.card.invert"), "1");
  EXPECT_EQ(metadata(m, "slidegrade.source"), "best.h5");
  EXPECT_NE(metadata(m, "slidegrade.input").find("inverted"), std::string::npos);
  EXPECT_NE(metadata(m, "slidegrade.outputs").find("binned"), std::string::npos);
}

TEST(OnnxExport, RefusesWhatItCannotExport) {
  testing::TempDir dir;
  EfficientNetConfig config = tiny_config("b0");
  EfficientNet model(config);
  const std::vector<NamedTensor> tensors = named_tensors(model.parameters(), model.buffers());
  WeightAttributes attributes;
  attributes.arch_config = config_text(config);
  // A training checkpoint: no model card, so the message points to best.h5.
  save_checkpoint(dir.file("last.h5"), tensors, attributes, {});
  testing::expect_error_containing([&] { infer::export_onnx(dir.file("last.h5"), dir.file("x.onnx"), {}); },
                                   {"last.h5", "training checkpoint has no model card", "best.h5"});
  testing::expect_error_containing([&] { infer::export_onnx(dir.file("missing.h5"), dir.file("x.onnx"), {}); },
                                   {"missing.h5", "no such weight file"});
  {
    std::ofstream damaged(dir.file("damaged.h5"), std::ios::binary);
    damaged << "not an HDF5 file";
  }
  EXPECT_THROW(infer::export_onnx(dir.file("damaged.h5"), dir.file("x.onnx"), {}), Error);
  // Tensors of another arch.
  WeightAttributes other = attributes;
  other.arch_config = config_text(tiny_config("lite0"));
  save_weights(dir.file("other.h5"), tensors, other);
  EXPECT_THROW(infer::export_onnx(dir.file("other.h5"), dir.file("x.onnx"), {}), Error);
  // Training mode, opsets out of range, bad batch words.
  model.set_training(true);
  testing::expect_error_containing([&] { infer::export_onnx(model, {}, dir.file("x.onnx"), {}); },
                                   {"training mode", "eval-mode"});
  model.set_training(false);
  for (const int64_t opset : {12, 18}) {
    infer::OnnxExportOptions options;
    options.opset = opset;
    testing::expect_error_containing([&] { infer::export_onnx(model, {}, dir.file("x.onnx"), options); },
                                     {"opset", "13 to 17"});
  }
  EXPECT_EQ(infer::parse_onnx_batch("dynamic"), 0);
  EXPECT_EQ(infer::parse_onnx_batch("8"), 8);
  for (const char* bad : {"0", "-2", "eight", "8x"})
    testing::expect_error_containing([&] { infer::parse_onnx_batch(bad); }, {bad, "dynamic or a positive"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.onnx")));
}

}  // namespace
}  // namespace sg::nn
