// slidegrade summary: every layer of a network with output shape, parameters and FLOPs.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "nn/efficientnet.h"
#include "nn/summary.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct SummaryOptions {
  std::string arch = "b0";
  int64_t image = 0, outputs = 1000, batch = 1;
};

int run_summary(const SummaryOptions& o) {
  nn::EfficientNetConfig config = nn::efficientnet_config(o.arch);
  config.outputs = o.outputs;
  const int64_t image = o.image > 0 ? o.image : config.resolution;
  const nn::EfficientNet model(config);
  const nn::Summary summary = nn::summarize(model, Shape{o.batch, image, image, 3});
  std::printf("%s", nn::format_summary(summary, detail::concat("efficientnet-", config.arch, " at ", image, "x", image,
                                                               ", batch ", o.batch, ", ", o.outputs, " outputs"))
                        .c_str());
  return 0;
}
}  // namespace

void add_summary_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<SummaryOptions>();
  CLI::App* parser = app.add_subcommand("summary", "Print every layer of a network: output shape, parameters, FLOPs");
  parser->add_option("--arch", o->arch, "EfficientNet variant")->capture_default_str()->transform(train::arch_choice());
  parser->add_option("--image", o->image, "input side in pixels (default: the arch's resolution)");
  parser->add_option("--outputs", o->outputs, "classifier outputs")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--batch", o->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  commands.push_back({parser, [o] { return run_summary(*o); }});
}

}  // namespace sg::cli
