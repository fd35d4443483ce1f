#include "nn/efficientnet_tensor_shapes.h"

#include <algorithm>

#include "core/error.h"

namespace sg::nn {

namespace {

// Parameters and buffers are listed apart (named_tensors puts every parameter before every buffer).
struct ShapeLists {
  std::vector<TensorShapeEntry> parameters, buffers;

  void conv(const std::string& module, int64_t out, int64_t kernel, int64_t in_per_group) {
    parameters.push_back({module + ".weight", Shape{out, kernel, kernel, in_per_group}});
  }
  void batch_norm(const std::string& module, int64_t channels) {
    parameters.push_back({module + ".weight", Shape{channels}});
    parameters.push_back({module + ".bias", Shape{channels}});
    buffers.push_back({module + ".running_mean", Shape{channels}});
    buffers.push_back({module + ".running_var", Shape{channels}});
  }
};

}  // namespace

// Mirrors the constructors: EfficientNet (nn/efficientnet.cpp), MBConv (nn/mbconv.cpp),
// SqueezeExcite (nn/squeeze_excite.cpp) and Head (nn/head.cpp).
std::vector<TensorShapeEntry> efficientnet_tensor_shapes(const EfficientNetConfig& config) {
  const EfficientNetLayout layout = efficientnet_layout(config);
  ShapeLists s;
  s.conv("conv_stem", layout.stem_channels, 3, 3);
  s.batch_norm("bn1", layout.stem_channels);
  const std::vector<MBConvOptions> blocks = efficientnet_block_options(config);
  size_t index = 0;
  for (size_t stage = 0; stage < layout.stages.size(); ++stage) {
    for (int64_t j = 0; j < layout.stages[stage].repeats; ++j, ++index) {
      SG_CHECK(index < blocks.size(), "efficientnet_tensor_shapes: fewer block options than the layout's blocks");
      const MBConvOptions& o = blocks[index];
      const std::string block = detail::concat("blocks.", stage, ".", j, ".");
      const bool expand = o.expand_ratio != 1;
      const int64_t hidden = o.in_channels * o.expand_ratio;
      if (expand) {
        s.conv(block + "conv_pw", hidden, 1, o.in_channels);
        s.batch_norm(block + "bn1", hidden);
      }
      s.conv(block + "conv_dw", hidden, o.kernel, 1);
      s.batch_norm(block + (expand ? "bn2" : "bn1"), hidden);
      if (o.se_ratio > 0) {
        const auto reduced = std::max<int64_t>(1, int64_t(double(o.in_channels) * o.se_ratio));
        s.parameters.push_back({block + "se.conv_reduce.weight", Shape{reduced, 1, 1, hidden}});
        s.parameters.push_back({block + "se.conv_reduce.bias", Shape{reduced}});
        s.parameters.push_back({block + "se.conv_expand.weight", Shape{hidden, 1, 1, reduced}});
        s.parameters.push_back({block + "se.conv_expand.bias", Shape{hidden}});
      }
      s.conv(block + (expand ? "conv_pwl" : "conv_pw"), o.out_channels, 1, hidden);
      s.batch_norm(block + (expand ? "bn3" : "bn2"), o.out_channels);
    }
  }
  SG_CHECK(index == blocks.size(), "efficientnet_tensor_shapes: more block options than the layout's blocks");
  s.conv("conv_head", layout.head_channels, 1, layout.stages.back().out_channels);
  s.batch_norm("bn2", layout.head_channels);
  if (config.pooling == HeadPooling::gem) s.parameters.push_back({"global_pool.p", Shape{1}});
  s.parameters.push_back({"classifier.weight", Shape{config.outputs, layout.head_channels}});
  s.parameters.push_back({"classifier.bias", Shape{config.outputs}});
  s.parameters.insert(s.parameters.end(), s.buffers.begin(), s.buffers.end());
  return s.parameters;
}

}  // namespace sg::nn
