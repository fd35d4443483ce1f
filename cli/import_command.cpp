// slidegrade import: another framework's weights -> our weight format (weights/weight_file.h).
//   slidegrade import --format keras IN.h5 OUT.h5 [--arch b0]
// Keras legacy HDF5 files (weights/keras_import.h); the arch is inferred from every layer's shape unless given.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/child_process.h"
#include "core/error.h"
#include "core/usage_error.h"
#include "nn/efficientnet_config_text.h"
#include "weights/keras_import.h"

namespace sg::cli {

namespace {
struct ImportOptions {
  std::string format = "keras";
  std::string input, output, arch;
};

int convert(const ImportOptions& o) {
  const keras::KerasImport r = keras::import_keras_weights(o.input, o.output, {o.arch});
  std::fprintf(stderr, "%s: %s, %zu layers with weights under %s -> %s: efficientnet-%s (%s), %zu tensors, %s%s\n",
               o.input.c_str(), keras::format_name(r.format), r.weighted_layer_count,
               r.format == keras::KerasFormat::keras3_weights_h5 ? "/layers" : r.root.c_str(), o.output.c_str(), r.config.arch.c_str(),
               o.arch.empty() ? "inferred from the shapes" : "given", r.tensors.size(),
               r.classifier_layer.empty() ? "no classifier (notop)" : ("classifier from " + r.classifier_layer).c_str(),
               r.has_normalization ? ", input normalisation from the normalization layer" : "");
  std::fprintf(stderr, "arch_config: %s\n", nn::config_text(r.config).c_str());
  return 0;
}

int run_import(const ImportOptions& o) {
  if (o.format != "keras")
    throw UsageError(detail::concat("import: unknown --format '", o.format,
                                    "' (expected keras; PyTorch checkpoints: weights/convert_torch.py)"));
  if (o.input == o.output)
    throw UsageError(detail::concat("import: the output ", o.output, " would overwrite the input"));
  SG_CHECK(std::filesystem::is_regular_file(o.input), o.input, ": no such file");
  // In a child process: a Keras file comes from elsewhere, and HDF5 1.10 can crash or hang on a
  // damaged one (core/child_process.h); the child writes OUT atomically and prints the summary.
  return run_in_child_process(
      "import " + o.input, [&] { return convert(o); }, child_time_limit_for_file(std::filesystem::file_size(o.input)));
}
}  // namespace

void add_import_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<ImportOptions>();
  CLI::App* parser = app.add_subcommand("import", "Convert another framework's weights to a slidegrade weight file");
  parser->add_option("--format", o->format, "source format: keras (legacy HDF5, save_weights)")->capture_default_str();
  parser->add_option("--arch", o->arch, "b0..b7 (default: inferred from every layer's shape; exactly one arch must fit)");
  parser->add_option("input", o->input, "source file")->required();
  parser->add_option("output", o->output, "slidegrade weight file to write")->required();
  commands.push_back({parser, [o] { return run_import(*o); }});
}

}  // namespace sg::cli
