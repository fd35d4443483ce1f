// slidegrade forward: eval-mode logits of a weight file's network for a .npy batch, the way anyone
// checks us against another framework (weights/convert_torch.py makes the weight file).
//   X.npy  float32 [N, H, W, 3], already normalised (NHWC)  ->  Y.npy  float32 [N, outputs]
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "data/npy.h"
#include "infer/network_forward.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct ForwardOptions {
  std::string weights, input, output;
  std::string device = "auto";
  std::string memory_limit;  // "": no cap
  int64_t batch = 8;
};

int run_forward(const ForwardOptions& o) {
  SG_CHECK(std::filesystem::is_regular_file(o.weights), o.weights, ": no such weight file");
  SG_CHECK(std::filesystem::is_regular_file(o.input), o.input, ": no such input file");
  const Device device = parse_device(o.device);
  const ScopedMemoryLimit memory_limit(device, o.memory_limit.empty() ? 0 : parse_bytes(o.memory_limit));
  allocator_for(device).reset_peak();
  std::fprintf(stderr, "%s\n", memory_limit_text(device, allocator_for(device).stats().limit).c_str());
  infer::NetworkFile file = infer::load_network_file(o.weights, device);
  const nn::EfficientNetConfig& config = file.config;

  Tensor x;
  {
    const AllocationScope scope("reading " + o.input,
                                "the input is read whole: raise --memory-limit, or split the .npy");
    x = read_npy(o.input);
  }
  infer::check_network_input(x, config, o.input);
  const int64_t n = x.shape()[0];
  const Tensor y = infer::network_logits(*file.network, x, device, o.batch);
  write_npy(o.output, y);
  std::fprintf(stderr, "efficientnet-%s on %s: %s -> %s [%lld, %lld]\n", config.arch.c_str(), device.str().c_str(),
               x.shape().str().c_str(), o.output.c_str(), static_cast<long long>(n),
               static_cast<long long>(config.outputs));
  std::fprintf(stderr, "%s\n", memory_peak_text(device, allocator_for(device).stats()).c_str());
  return 0;
}
}  // namespace

void add_forward_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<ForwardOptions>();
  CLI::App* parser = app.add_subcommand("forward", "Eval-mode logits of a weight file's network for a .npy batch");
  parser->add_option("--weights", o->weights, "weight file (.h5, our format)")->required();
  parser->add_option("--input", o->input, "float32 .npy [N, H, W, 3], normalised")->required();
  parser->add_option("--output", o->output, "float32 .npy [N, outputs] to write")->required();
  parser->add_option("--device", o->device, "where to run; auto: the GPU if there is one")
      ->capture_default_str()
      ->check(train::device_choice());
  parser->add_option("--batch", o->batch, "images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--memory-limit,--memory_limit", o->memory_limit,
                     "cap the device's allocator (4GiB, 512MiB, 2GB; the weights, the input and activations count); "
                     "default: no cap")
      ->check(train::memory_limit_choice());
  commands.push_back({parser, [o] { return run_forward(*o); }});
}

}  // namespace sg::cli
