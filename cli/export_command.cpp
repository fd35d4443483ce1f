// slidegrade export: a weight file -> a model for another runtime (infer/onnx_export.h).
//   slidegrade export --format onnx IN.h5 OUT.onnx [--layout nhwc|nchw] [--batch N|dynamic]
//                     [--opset N] [--precision f32|f16]
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/usage_error.h"
#include "infer/onnx_export.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct ExportOptions {
  std::string format = "onnx";
  std::string input, output;
  std::string layout = "nhwc";
  std::string batch = "dynamic";
  int64_t opset = nn::kOnnxNewestOpset;
  std::string precision = "f32";
};

int run_export(const ExportOptions& o) {
  if (o.format != "onnx") throw UsageError(detail::concat("export: unknown --format '", o.format, "' (expected onnx)"));
  infer::OnnxExportOptions options;
  options.layout = parse_word(infer::kOnnxLayoutWords, o.layout);
  options.batch = infer::parse_onnx_batch(o.batch);
  options.opset = o.opset;
  options.precision = parse_word(infer::kOnnxPrecisionWords, o.precision);
  const infer::OnnxExportReport r = infer::export_onnx(o.input, o.output, options);
  std::fprintf(stderr,
               "efficientnet-%s -> %s: ONNX opset %lld, %s, input 'image' float32 %s, output 'logits' [%s, %lld]; "
               "%lld nodes, %lld initializers, %.1f MiB; model card: %s\n",
               r.arch.c_str(), o.output.c_str(), static_cast<long long>(options.opset), o.precision.c_str(),
               options.layout == infer::OnnxLayout::nhwc ? "[N, H, W, 3]" : "[N, 3, H, W]",
               options.batch == 0 ? "N" : std::to_string(options.batch).c_str(), static_cast<long long>(r.outputs),
               static_cast<long long>(r.nodes), static_cast<long long>(r.initializers),
               double(r.bytes) / (1024.0 * 1024.0), r.model_card ? "yes" : "none (plain network)");
  return 0;
}
}  // namespace

void add_export_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* parser = app.add_subcommand("export", "Write a weight file's network for another runtime (ONNX)");
  parser->add_option("--format", o->format, "target format: onnx")->capture_default_str();
  parser->add_option("--layout", o->layout, "the input's layout")
      ->capture_default_str()
      ->transform(train::word_choice(infer::kOnnxLayoutWords));
  parser->add_option("--batch", o->batch, "images per call: a fixed count, or dynamic")->capture_default_str();
  parser->add_option("--opset", o->opset, "ONNX operator set")
      ->capture_default_str()
      ->check(CLI::Range(nn::kOnnxOldestOpset, nn::kOnnxNewestOpset));
  parser->add_option("--precision", o->precision, "the graph's compute type (input and output stay float32)")
      ->capture_default_str()
      ->transform(train::word_choice(infer::kOnnxPrecisionWords));
  parser->add_option("input", o->input, "weight file: a trained model (best.h5) or network weights")->required();
  parser->add_option("output", o->output, "ONNX file to write")->required();
  commands.push_back({parser, [o] { return run_export(*o); }});
}

}  // namespace sg::cli
