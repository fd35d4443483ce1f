// slidegrade info: the GPU code this binary holds, the devices, the kernels each card gets, and the
// CPU GEMM library in use.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/cuda/device_code.h"
#include "core/cuda_architectures.h"
#include "core/device.h"
#include "kernels/cpu/blas_info.h"
#include "kernels/cuda_kernel_paths.h"
#include "nn/precision.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct InfoOptions {
  std::string device = "auto";
  std::string precision = "f16";
};

void print_indented(const std::string& text, const char* indent) {
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = std::min(text.find('\n', begin), text.size());
    std::printf("%s%s\n", indent, text.substr(begin, end - begin).c_str());
    begin = end + 1;
  }
}

int run_info(const InfoOptions& o) {
  const DType precision = nn::parse_precision(o.precision);
  std::printf("slidegrade 0.1.0\n");
  const CudaArchitectures& held = compiled_cuda_architectures();
#if SLIDEGRADE_WITH_CUDA
  std::printf("CUDA code in this binary: %s\n",
              held.empty() ? "compiled for the emulated card (test build)" : describe_cuda_architectures(held).c_str());
#else
  std::printf("CUDA code in this binary: none (built without CUDA)\n");
#endif
  std::printf("CUDA devices: %d%s%s\n", cuda_device_count(), cuda_available() ? "" : " (",
              cuda_available() ? "" : (cuda_unavailable_reason() + ")").c_str());
  for (int i = 0; i < cuda_device_count(); ++i) {
    std::printf("  cuda:%d %s\n", i, cuda_device_name(i).c_str());
    const int sm = cuda::compute_capability(i);
    if (const std::string missing = cuda::missing_code_reason(i); !missing.empty()) {
      std::printf("    cannot run: %s\n", missing.c_str());
      continue;
    }
    const int loaded = held.empty() ? sm : loaded_cuda_architecture(held, sm);
    const bool machine_code =
        held.empty() || std::find(held.machine_code.begin(), held.machine_code.end(), loaded) != held.machine_code.end();
    const std::string code = machine_code ? detail::concat("sm_", loaded, " machine code")
                                          : detail::concat("compute_", loaded, " PTX (JIT-compiled on first use)");
    std::printf("    runs %s; kernels for %s activations:\n", code.c_str(), o.precision.c_str());
    print_indented(describe_cuda_kernel_paths(sm, loaded, precision), "      ");
  }
  std::printf("CPU GEMM: %s\n", cpu::gemm_library_description().c_str());
  if (const std::string hint = cpu::gemm_library_hint(); !hint.empty()) std::printf("  note: %s\n", hint.c_str());
  std::printf("selected device: %s\n", parse_device(o.device).str().c_str());
  return 0;
}
}  // namespace

void add_info_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* parser = app.add_subcommand("info", "Print the GPU code this binary holds, the devices and their kernels");
  parser->add_option("--device", o->device, "the device to select; auto: the GPU if there is one")
      ->capture_default_str()
      ->check(train::device_choice());
  parser->add_option("--precision", o->precision, "whose kernels to describe")
      ->capture_default_str()
      ->transform(train::word_choice(nn::kPrecisionWords));
  commands.push_back({parser, [o] { return run_info(*o); }});
}

}  // namespace sg::cli
