#include "infer/onnx_export.h"

#include <charconv>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/usage_error.h"
#include "grading/head.h"
#include "grading/model_card.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "weights/weight_file.h"

namespace sg::infer {

namespace {
std::string float_list(const std::array<float, 3>& values) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%.9g,%.9g,%.9g", double(values[0]), double(values[1]), double(values[2]));
  return buffer;
}

// How to read the logits, for whoever deploys the file without slidegrade.
std::string outputs_text(grading::HeadKind head) {
  switch (head) {
    case grading::HeadKind::softmax:
      return "softmax: 6 logits of ISUP 0-5; score = expected grade of softmax(logits); grade = argmax, or the "
             "score against the thresholds when thresholds_tuned=1";
    case grading::HeadKind::binned:
      return "binned: 5 logits, sigmoid(logit k) = P(grade > k); score = sum of the 5 sigmoids; grade = the number "
             "of thresholds the score reaches";
    case grading::HeadKind::regression:
      return "regression: 1 logit, the score; grade = the number of thresholds the score reaches";
  }
  return "";
}
}  // namespace

int64_t parse_onnx_batch(std::string_view text) {
  if (detail::same_word(text, "dynamic")) return 0;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1)
    throw UsageError(detail::concat("--batch '", text, "': expected dynamic or a positive image count"));
  return value;
}

OnnxExportReport export_onnx(const std::string& weights, const std::string& output, const OnnxExportOptions& options) {
  std::error_code error;
  SG_CHECK(std::filesystem::is_regular_file(weights, error), weights, ": no such weight file");
  const WeightFileInfo info = read_weight_file_info(weights);
  SG_CHECK(!info.attributes.arch_config.empty(), weights, ": no arch_config attribute (not a slidegrade network?)");
  // A trained model carries its card; a plain network (ImageNet weights) has none, and that is
  // fine; a training checkpoint has none because best.h5 holds it.
  const bool has_card = info.attributes.user.count("head") > 0;
  SG_CHECK(has_card || !info.is_checkpoint, weights,
           ": a training checkpoint has no model card (it is for resuming); export the run's best.h5, which has "
           "the card (head, tiling, thresholds, normalisation)");
  grading::ModelCard card;
  if (has_card) card = grading::read_model_card(info.attributes, weights);
  const nn::EfficientNetConfig config = nn::parse_config_text(info.attributes.arch_config, weights);
  if (has_card)
    SG_CHECK(config.outputs == grading::head_outputs(card.head), weights, ": the network has ", config.outputs,
             " outputs but its card says head=", grading::head_kind_name(card.head), " (",
             grading::head_outputs(card.head), " outputs)");

  nn::EfficientNet model(config, Device::cpu());
  load_weights(weights, named_tensors(model.parameters(), model.buffers()));  // strict: every mismatch named
  WeightAttributes attributes = info.attributes;
  attributes.user["source"] = std::filesystem::path(weights).filename().string();
  return export_onnx(model, attributes, output, options);
}

OnnxExportReport export_onnx(const nn::EfficientNet& model, const WeightAttributes& attributes,
                             const std::string& output, const OnnxExportOptions& options) {
  SG_CHECK(options.batch >= 0, "ONNX export: batch ", options.batch, " must be positive (0: dynamic)");
  SG_CHECK(!model.training(), "ONNX export: efficientnet-", model.config().arch,
           " is in training mode; the export is of the eval-mode network (set_training(false))");
  const nn::EfficientNetConfig& config = model.config();
  const bool has_card = attributes.user.count("head") > 0;
  grading::ModelCard card;
  if (has_card) card = grading::read_model_card(attributes, "efficientnet-" + config.arch);
  nn::OnnxGraph graph("efficientnet_" + config.arch, options.precision, options.opset);
  const std::vector<std::string> batch_symbol =
      options.batch == 0 ? std::vector<std::string>{"batch"} : std::vector<std::string>{};
  const int64_t n = options.batch == 0 ? -1 : options.batch;
  std::vector<std::string> symbols = batch_symbol;
  symbols.insert(symbols.end(), {"height", "width"});
  std::string x = "image";
  if (options.layout == OnnxLayout::nhwc) {
    graph.input(x, {n, -1, -1, 3}, symbols);
    x = graph.node("Transpose", {x}, "image.nchw", {{"perm", std::vector<int64_t>{0, 3, 1, 2}}});
  } else {
    graph.input(x, {n, 3, -1, -1}, symbols);
  }
  if (options.precision != DType::f32) x = graph.node("Cast", {x}, "image.f16", {{"to", int64_t{10}}});  // FLOAT16
  std::string y = model.export_onnx(graph, x);
  // The output under its public name, float32 whatever the compute type.
  y = options.precision != DType::f32 ? graph.node("Cast", {y}, "logits", {{"to", int64_t{1}}})  // FLOAT
                                      : graph.node("Identity", {y}, "logits");
  SG_CHECK(y == "logits", "ONNX export: the output name 'logits' is taken inside the graph (", y, ")");
  graph.output("logits", {n, config.outputs}, batch_symbol);

  graph.metadata("slidegrade.version", SLIDEGRADE_VERSION);
  if (const auto source = attributes.user.find("source"); source != attributes.user.end())
    graph.metadata("slidegrade.source", source->second);
  graph.metadata("slidegrade.arch_config", nn::config_text(config));
  graph.metadata(
      "slidegrade.input",
      detail::concat("image float32 ", options.layout == OnnxLayout::nhwc ? "[N, H, W, 3] NHWC" : "[N, 3, H, W] NCHW",
                     ", RGB: x = (p / 255 - mean) / std per channel, p the uint8 pixel",
                     has_card && card.invert ? " inverted first (255 - p)" : ""));
  graph.metadata("slidegrade.mean", float_list(config.mean));
  graph.metadata("slidegrade.std", float_list(config.std));
  graph.metadata("slidegrade.precision", std::string(dtype_name(options.precision)));
  graph.metadata("slidegrade.batch_norm", "kept: BatchNormalization over the running statistics (eval mode)");
  graph.metadata("slidegrade.model_card", has_card ? "yes" : "none (a plain network: no grading head or tiling)");
  if (has_card) {
    graph.metadata("slidegrade.outputs", outputs_text(card.head));
    // Every attribute of the card (head, tiles, tile_size, tile_level, invert, thresholds, ...).
    for (const auto& [key, value] : attributes.user)
      if (key != "source") graph.metadata("slidegrade.card." + key, value);
  }
  graph.save(output);

  OnnxExportReport report;
  report.arch = config.arch;
  report.outputs = config.outputs;
  report.model_card = has_card;
  report.nodes = graph.node_count();
  report.initializers = graph.initializer_count();
  report.bytes = std::filesystem::file_size(output);
  return report;
}

}  // namespace sg::infer
