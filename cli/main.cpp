// The slidegrade command: thin subcommands over the library folders.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "core/allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cpu/blas_info.h"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slidegrade: grade prostate biopsy slides (ISUP 0-5) with EfficientNets"};
  app.require_subcommand(1);

  std::string device = "auto";
  CLI::App* info = app.add_subcommand("info", "Print the devices slidegrade can use");
  info->add_option("--device", device, "cpu, cuda, cuda:N or auto")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (info->parsed()) return run_info(device);
  } catch (const sg::Error& e) {
    std::fprintf(stderr, "slidegrade: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
