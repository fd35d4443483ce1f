// The slidegrade command: thin subcommands over the library folders.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "core/allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cpu/blas_info.h"
#include "nn/efficientnet.h"
#include "nn/summary.h"

namespace {

int run_info(const std::string& device_text) {
  const sg::Device device = sg::parse_device(device_text);
  std::printf("slidegrade 0.1.0\n");
  std::printf("CUDA devices: %d%s%s\n", sg::cuda_device_count(), sg::cuda_available() ? "" : " (",
              sg::cuda_available() ? "" : (sg::cuda_unavailable_reason() + ")").c_str());
  for (int i = 0; i < sg::cuda_device_count(); ++i)
    std::printf("  cuda:%d %s\n", i, sg::cuda_device_name(i).c_str());
  std::printf("CPU GEMM: %s\n", sg::cpu::gemm_library_description().c_str());
  if (const std::string hint = sg::cpu::gemm_library_hint(); !hint.empty()) std::printf("  note: %s\n", hint.c_str());
  std::printf("selected device: %s\n", device.str().c_str());
  return 0;
}

int run_summary(const std::string& arch, int64_t image, int64_t outputs, int64_t batch) {
  sg::nn::EfficientNetConfig config = sg::nn::efficientnet_config(arch);
  config.outputs = outputs;
  if (image <= 0) image = config.resolution;
  const sg::nn::EfficientNet model(config);
  const sg::nn::Summary summary = sg::nn::summarize(model, sg::Shape{batch, image, image, 3});
  std::printf("%s", sg::nn::format_summary(summary, sg::detail::concat("efficientnet-", config.arch, " at ", image, "x",
                                                                        image, ", batch ", batch, ", ", outputs,
                                                                        " outputs")).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slidegrade: grade prostate biopsy slides (ISUP 0-5) with EfficientNets"};
  app.require_subcommand(1);

  std::string device = "auto";
  CLI::App* info = app.add_subcommand("info", "Print the devices slidegrade can use");
  info->add_option("--device", device, "cpu, cuda, cuda:N or auto")->capture_default_str();

  std::string arch = "b0";
  int64_t image = 0, outputs = 1000, batch = 1;
  CLI::App* summary = app.add_subcommand("summary", "Print every layer of a network: output shape, parameters, FLOPs");
  summary->add_option("--arch", arch, "b0..b7, lite0..lite4")->capture_default_str();
  summary->add_option("--image", image, "input side in pixels (default: the arch's resolution)");
  summary->add_option("--outputs", outputs, "classifier outputs")->capture_default_str()->check(CLI::PositiveNumber);
  summary->add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);

  CLI11_PARSE(app, argc, argv);
  try {
    if (info->parsed()) return run_info(device);
    if (summary->parsed()) return run_summary(arch, image, outputs, batch);
  } catch (const sg::Error& e) {
    std::fprintf(stderr, "slidegrade: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
