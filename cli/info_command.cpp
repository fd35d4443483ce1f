// slidegrade info: the devices and the CPU GEMM library in use.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/device.h"
#include "kernels/cpu/blas_info.h"

namespace sg::cli {

void add_info_command(CLI::App& app, Commands& commands) {
  auto device = std::make_shared<std::string>("auto");
  CLI::App* parser = app.add_subcommand("info", "Print the devices slidegrade can use");
  parser->add_option("--device", *device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  commands.push_back({parser, [device] {
                        const Device selected = parse_device(*device);
                        std::printf("slidegrade 0.1.0\n");
                        std::printf("CUDA devices: %d%s%s\n", cuda_device_count(), cuda_available() ? "" : " (",
                                    cuda_available() ? "" : (cuda_unavailable_reason() + ")").c_str());
                        for (int i = 0; i < cuda_device_count(); ++i)
                          std::printf("  cuda:%d %s\n", i, cuda_device_name(i).c_str());
                        std::printf("CPU GEMM: %s\n", cpu::gemm_library_description().c_str());
                        if (const std::string hint = cpu::gemm_library_hint(); !hint.empty())
                          std::printf("  note: %s\n", hint.c_str());
                        std::printf("selected device: %s\n", selected.str().c_str());
                        return 0;
                      }});
}

}  // namespace sg::cli
