// slidegrade forward: eval-mode logits of a weight file's network for a .npy batch, the way anyone
// checks us against another framework (weights/convert_torch.py makes the weight file).
//   X.npy  float32 [N, H, W, 3], already normalised (NHWC)  ->  Y.npy  float32 [N, outputs]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "data/npy.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "train/option_validators.h"
#include "weights/weight_file.h"

namespace sg::cli {

namespace {
struct ForwardOptions {
  std::string weights, input, output;
  std::string device = "auto";
  std::string memory_limit;  // "": no cap
  int64_t batch = 8;
};

// Rows [begin, begin + count) of a CPU tensor's first axis, copied.
Tensor rows(const Tensor& t, int64_t begin, int64_t count) {
  std::vector<int64_t> dims = t.shape().dims();
  const size_t row_bytes = t.nbytes() / size_t(dims[0]);
  dims[0] = count;
  Tensor out = Tensor::empty(Shape(dims), t.dtype(), Device::cpu(), "forward chunk");
  std::memcpy(out.data(), static_cast<const char*>(t.data()) + size_t(begin) * row_bytes, size_t(count) * row_bytes);
  return out;
}

int run_forward(const ForwardOptions& o) {
  SG_CHECK(std::filesystem::is_regular_file(o.weights), o.weights, ": no such weight file");
  SG_CHECK(std::filesystem::is_regular_file(o.input), o.input, ": no such input file");
  const WeightFileInfo info = read_weight_file_info(o.weights);
  SG_CHECK(!info.attributes.arch_config.empty(), o.weights, ": no arch_config attribute (not a slidegrade network?)");
  const nn::EfficientNetConfig config = nn::parse_config_text(info.attributes.arch_config, o.weights);
  const Device device = parse_device(o.device);
  const ScopedMemoryLimit memory_limit(device, o.memory_limit.empty() ? 0 : parse_bytes(o.memory_limit));
  allocator_for(device).reset_peak();
  std::fprintf(stderr, "%s\n", memory_limit_text(device, allocator_for(device).stats().limit).c_str());
  const std::string advice = detail::concat("use a smaller --batch (now ", o.batch, "), or raise --memory-limit");

  AllocationScope setup_scope("loading the weights " + o.weights,
                              "the network's weights alone do not fit: raise --memory-limit");
  nn::EfficientNet model(config, device);
  load_weights(o.weights, named_tensors(model.parameters(), model.buffers()));  // strict: every mismatch named
  model.set_training(false);

  setup_scope.relabel("reading " + o.input, "the input is read whole: raise --memory-limit, or split the .npy");
  const Tensor x = read_npy(o.input);
  SG_CHECK(x.dtype() == DType::f32, o.input, ": dtype ", dtype_name(x.dtype()), ", expected float32 (<f4)");
  SG_CHECK(x.shape().rank() == 4 && x.shape()[3] == 3, o.input, ": shape ", x.shape().str(),
           ", expected [N, H, W, 3] (NHWC, normalised RGB)");
  setup_scope.relabel("", advice);
  const int64_t n = x.shape()[0];
  SG_CHECK(n >= 1, o.input, ": empty batch ", x.shape().str());
  SG_CHECK(x.shape()[1] >= nn::EfficientNet::kMinImageSize && x.shape()[2] >= nn::EfficientNet::kMinImageSize,
           o.input, ": image ", x.shape()[1], "x", x.shape()[2], " is too small for efficientnet-", config.arch,
           " (at least ", nn::EfficientNet::kMinImageSize, "x", nn::EfficientNet::kMinImageSize, ")");

  Tensor y = Tensor::empty({n, config.outputs}, DType::f32, Device::cpu(), "logits");
  const size_t row_bytes = size_t(config.outputs) * sizeof(float);
  for (int64_t begin = 0; begin < n; begin += o.batch) {
    const int64_t count = std::min(o.batch, n - begin);
    const AllocationScope scope(detail::concat("forward of images ", begin + 1, "..", begin + count, " of ", n, " (",
                                               x.shape()[1], "x", x.shape()[2], ")"),
                                advice);
    nn::Context ctx;  // inference: nothing kept for backward
    const Tensor chunk = count == n ? x : rows(x, begin, count);
    const Tensor logits = model.forward(ctx, device.is_cpu() ? chunk : chunk.to(device)).to(Device::cpu());
    std::memcpy(static_cast<char*>(y.data()) + size_t(begin) * row_bytes, logits.data(), size_t(count) * row_bytes);
  }
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
