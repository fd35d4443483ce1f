#include "infer/network_forward.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"
#include "nn/context.h"
#include "nn/efficientnet_config_text.h"

namespace sg::infer {

namespace {
// Rows [begin, begin + count) of a CPU tensor's first axis, copied.
Tensor rows(const Tensor& t, int64_t begin, int64_t count) {
  std::vector<int64_t> dims = t.shape().dims();
  const size_t row_bytes = t.nbytes() / size_t(dims[0]);
  dims[0] = count;
  Tensor out = Tensor::empty(Shape(dims), t.dtype(), Device::cpu(), "forward chunk");
  std::memcpy(out.data(), static_cast<const char*>(t.data()) + size_t(begin) * row_bytes, size_t(count) * row_bytes);
  return out;
}
}  // namespace

NetworkFile load_network_file(const std::string& path, Device device) {
  std::error_code error;
  SG_CHECK(std::filesystem::is_regular_file(path, error), path, ": no such weight file");
  NetworkFile file;
  file.path = path;
  file.info = read_weight_file_info(path);
  SG_CHECK(!file.info.attributes.arch_config.empty(), path, ": no arch_config attribute (not a slidegrade network?)");
  file.config = nn::parse_config_text(file.info.attributes.arch_config, path);
  AllocationScope scope("loading the weights " + path, "the network's weights alone do not fit: raise --memory-limit");
  file.network = std::make_unique<nn::EfficientNet>(file.config, device);
  load_weights(path,
               named_tensors(file.network->parameters(), file.network->buffers()));  // strict: every mismatch named
  file.network->set_training(false);
  return file;
}

void check_network_input(const Tensor& x, const nn::EfficientNetConfig& config, const std::string& what) {
  SG_CHECK(x.dtype() == DType::f32, what, ": dtype ", dtype_name(x.dtype()), ", expected float32 (<f4)");
  SG_CHECK(x.device().is_cpu(), what, ": on ", x.device().str(), ", expected the CPU");
  SG_CHECK(x.shape().rank() == 4 && x.shape()[3] == 3, what, ": shape ", x.shape().str(),
           ", expected [N, H, W, 3] (NHWC, normalised RGB)");
  SG_CHECK(x.shape()[0] >= 1, what, ": empty batch ", x.shape().str());
  SG_CHECK(x.shape()[1] >= nn::EfficientNet::kMinImageSize && x.shape()[2] >= nn::EfficientNet::kMinImageSize, what,
           ": image ", x.shape()[1], "x", x.shape()[2], " is too small for efficientnet-", config.arch, " (at least ",
           nn::EfficientNet::kMinImageSize, "x", nn::EfficientNet::kMinImageSize, ")");
}

Tensor network_logits(nn::EfficientNet& network, const Tensor& x, Device device, int64_t batch) {
  SG_CHECK(batch >= 1, "forward: batch must be at least 1, got ", batch);
  const int64_t n = x.shape()[0];
  const int64_t outputs = network.config().outputs;
  const std::string advice = detail::concat("use a smaller --batch (now ", batch, "), or raise --memory-limit");
  Tensor y = Tensor::empty({n, outputs}, DType::f32, Device::cpu(), "logits");
  const size_t row_bytes = size_t(outputs) * sizeof(float);
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t count = std::min(batch, n - begin);
    const AllocationScope scope(detail::concat("forward of images ", begin + 1, "..", begin + count, " of ", n, " (",
                                               x.shape()[1], "x", x.shape()[2], ")"),
                                advice);
    nn::Context ctx;  // inference: nothing kept for backward
    const Tensor chunk = count == n ? x : rows(x, begin, count);
    const Tensor logits = network.forward(ctx, device.is_cpu() ? chunk : chunk.to(device)).to(Device::cpu());
    std::memcpy(static_cast<char*>(y.data()) + size_t(begin) * row_bytes, logits.data(), size_t(count) * row_bytes);
  }
  return y;
}

}  // namespace sg::infer
