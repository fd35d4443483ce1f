#include "nn/efficientnet.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "kernels/cast.h"
#include "nn/inference_fusion.h"
#include "nn/onnx_graph.h"
#include "nn/precision.h"

namespace sg::nn {

namespace {

// t in `dtype` (t itself when it already is).
Tensor cast_to(const Tensor& t, DType dtype, const Stream& stream, const char* what) {
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, t.device(), what);
  cast(t, out, stream);
  return out;
}

}  // namespace

namespace {

struct Scaling {
  const char* name;
  double width, depth;
  int64_t resolution;
  double dropout;
  bool lite;
};

// docs/efficientnet.md; Lite from TF's efficientnet_lite_builder.
constexpr Scaling kScalings[] = {
    {"b0", 1.0, 1.0, 224, 0.2, false},    {"b1", 1.0, 1.1, 240, 0.2, false},    {"b2", 1.1, 1.2, 260, 0.3, false},
    {"b3", 1.2, 1.4, 300, 0.3, false},    {"b4", 1.4, 1.8, 380, 0.4, false},    {"b5", 1.6, 2.2, 456, 0.4, false},
    {"b6", 1.8, 2.6, 528, 0.5, false},    {"b7", 2.0, 3.1, 600, 0.5, false},    {"lite0", 1.0, 1.0, 224, 0.2, true},
    {"lite1", 1.0, 1.1, 240, 0.2, true},  {"lite2", 1.1, 1.2, 260, 0.3, true},  {"lite3", 1.2, 1.4, 280, 0.3, true},
    {"lite4", 1.4, 1.8, 300, 0.3, true},
};

// The B0 stages: kernel, repeats, in, out, expand, stride.
constexpr StageSpec kBaseStages[] = {
    {3, 1, 32, 16, 1, 1},  {3, 2, 16, 24, 6, 2},  {5, 2, 24, 40, 6, 2},    {3, 3, 40, 80, 6, 2},
    {5, 3, 80, 112, 6, 1}, {5, 4, 112, 192, 6, 2}, {3, 1, 192, 320, 6, 1},
};
constexpr int64_t kBaseStem = 32, kBaseHead = 1280;

std::string normalise_arch(std::string_view arch) {
  std::string s;
  for (char c : arch) s += char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* prefix : {"efficientnet_", "efficientnet-", "efficientnet"})
    if (s.rfind(prefix, 0) == 0) {
      s = s.substr(std::string_view(prefix).size());
      break;
    }
  return s;
}

}  // namespace

std::vector<std::string> efficientnet_arch_names() {
  std::vector<std::string> names;
  for (const Scaling& s : kScalings) names.emplace_back(s.name);
  return names;
}

EfficientNetConfig efficientnet_config(std::string_view arch) {
  const std::string key = normalise_arch(arch);
  const auto it = std::find_if(std::begin(kScalings), std::end(kScalings), [&](const Scaling& s) { return key == s.name; });
  if (it == std::end(kScalings)) {
    std::string known;
    for (const std::string& name : efficientnet_arch_names()) known += (known.empty() ? "" : ", ") + name;
    throw Error(detail::concat("unknown architecture '", arch, "' (known: ", known, ")"));
  }
  EfficientNetConfig c;
  c.arch = it->name;
  c.width = it->width;
  c.depth = it->depth;
  c.resolution = it->resolution;
  c.dropout = it->dropout;
  c.lite = it->lite;
  if (c.lite) {
    c.activation = math::Activation::relu6;
    c.padding = Padding::tf_same;
    c.bn_eps = 1e-3;
    c.bn_momentum = 0.01;
    c.mean = {127.0f / 255.0f, 127.0f / 255.0f, 127.0f / 255.0f};  // (x - 127) / 128 on 0..255
    c.std = {128.0f / 255.0f, 128.0f / 255.0f, 128.0f / 255.0f};
  } else if (c.width >= 1.6) {  // torchvision B5-B7
    c.bn_eps = 1e-3;
    c.bn_momentum = 0.01;
  }
  return c;
}

int64_t round_filters(int64_t filters, double width) {
  const double f = double(filters) * width;
  int64_t n = std::max<int64_t>(8, int64_t(f + 4) / 8 * 8);
  if (double(n) < 0.9 * f) n += 8;
  return n;
}

int64_t round_repeats(int64_t repeats, double depth) { return int64_t(std::ceil(depth * double(repeats))); }

int64_t EfficientNetLayout::block_count() const {
  int64_t n = 0;
  for (const StageSpec& s : stages) n += s.repeats;
  return n;
}

EfficientNetLayout efficientnet_layout(const EfficientNetConfig& c) {
  SG_CHECK(c.width > 0 && c.depth > 0, "efficientnet '", c.arch, "': width ", c.width, " and depth ", c.depth,
           " must be positive");
  EfficientNetLayout layout;
  layout.stem_channels = c.lite ? kBaseStem : round_filters(kBaseStem, c.width);
  layout.head_channels = c.lite ? kBaseHead : round_filters(kBaseHead, c.width);
  const size_t last = std::size(kBaseStages) - 1;
  int64_t in = layout.stem_channels;
  for (size_t i = 0; i < std::size(kBaseStages); ++i) {
    StageSpec s = kBaseStages[i];
    s.in_channels = in;
    s.out_channels = round_filters(s.out_channels, c.width);
    if (!(c.lite && (i == 0 || i == last))) s.repeats = round_repeats(s.repeats, c.depth);
    layout.stages.push_back(s);
    in = s.out_channels;
  }
  return layout;
}

std::vector<MBConvOptions> efficientnet_block_options(const EfficientNetConfig& c) {
  const EfficientNetLayout layout = efficientnet_layout(c);
  const int64_t total = layout.block_count();
  std::vector<MBConvOptions> blocks;
  int64_t index = 0;
  for (const StageSpec& s : layout.stages)
    for (int64_t j = 0; j < s.repeats; ++j, ++index) {
      MBConvOptions o;
      o.in_channels = j == 0 ? s.in_channels : s.out_channels;
      o.out_channels = s.out_channels;
      o.kernel = s.kernel;
      o.stride = j == 0 ? s.stride : 1;
      o.expand_ratio = s.expand_ratio;
      o.se_ratio = c.lite ? 0.0 : 0.25;
      o.drop_connect = c.drop_connect * double(index) / double(total);
      o.activation = c.activation;
      o.padding = c.padding;
      o.bn_eps = c.bn_eps;
      o.bn_momentum = c.bn_momentum;
      blocks.push_back(o);
    }
  return blocks;
}

EfficientNet::EfficientNet(const EfficientNetConfig& config, Device device)
    : Module(""), config_(config), layout_(efficientnet_layout(config)) {
  const auto& c = config_;
  conv_stem_ = std::make_unique<Conv2d>("conv_stem", Conv2dOptions{3, layout_.stem_channels, 3, 2, 1, c.padding, false},
                                        device, c.seed);
  conv_stem_->set_input_grad(false);
  bn1_ = std::make_unique<BatchNorm2d>("bn1", layout_.stem_channels, c.bn_eps, c.bn_momentum, c.activation, device);
  const std::vector<MBConvOptions> options = efficientnet_block_options(c);
  size_t index = 0;
  for (size_t stage = 0; stage < layout_.stages.size(); ++stage)
    for (int64_t j = 0; j < layout_.stages[stage].repeats; ++j, ++index)
      blocks_.push_back(
          std::make_unique<MBConv>(detail::concat("blocks.", stage, ".", j), options[index], device, c.seed));
  const int64_t last = layout_.stages.back().out_channels;
  conv_head_ = std::make_unique<Conv2d>("conv_head", Conv2dOptions{last, layout_.head_channels, 1, 1, 1, c.padding, false},
                                        device, c.seed);
  bn2_ = std::make_unique<BatchNorm2d>("bn2", layout_.head_channels, c.bn_eps, c.bn_momentum, c.activation, device);
  head_ = std::make_unique<Head>("", HeadOptions{layout_.head_channels, c.outputs, c.pooling, c.dropout, 3.0}, device,
                                 c.seed);
}

std::vector<Module*> EfficientNet::children() {
  std::vector<Module*> out{conv_stem_.get(), bn1_.get()};
  for (auto& block : blocks_) out.push_back(block.get());
  out.push_back(conv_head_.get());
  out.push_back(bn2_.get());
  out.push_back(head_.get());
  return out;
}

void EfficientNet::check_image(const Shape& input) const {
  SG_CHECK(input.rank() == 4 && input[3] == 3, "efficientnet-", config_.arch, ": input ", input.str(),
           " should be [N, H, W, 3] (NHWC, normalised RGB)");
  SG_CHECK(input[0] >= 1, "efficientnet-", config_.arch, ": empty batch ", input.str());
  SG_CHECK(input[1] >= kMinImageSize && input[2] >= kMinImageSize, "efficientnet-", config_.arch, ": image ",
           input[1], "x", input[2], " is too small: at least ", kMinImageSize, "x", kMinImageSize,
           " (the network downsamples by 32)");
}

Shape EfficientNet::describe(const Shape& input, std::vector<LayerInfo>* layers) const {
  check_image(input);
  Shape s = bn1_->describe(conv_stem_->describe(input, layers), layers);
  for (const auto& block : blocks_) s = block->describe(s, layers);
  s = bn2_->describe(conv_head_->describe(s, layers), layers);
  return head_->describe(s, layers);
}

void EfficientNet::set_checkpointing(const CheckpointPolicy& policy) {
  checkpointed_ = policy.resolve(int64_t(blocks_.size()));
}

EfficientNet::~EfficientNet() = default;

void EfficientNet::set_inference_fusion(bool enabled) {
  inference_fusion_ = enabled;
  if (!enabled) drop_folded_weights();
}

void EfficientNet::drop_folded_weights() { folds_.reset(); }

size_t EfficientNet::folded_weight_bytes() const { return folds_ ? folds_->bytes() : 0; }

void EfficientNet::set_precision(DType precision) {
  SG_CHECK(is_floating(precision), "efficientnet-", config_.arch, ": precision ", dtype_name(precision),
           " is not f32, f16 or bf16");
  if (precision != precision_) release_compute_copies(*this);
  precision_ = precision;
}

Tensor EfficientNet::forward(Context& ctx, const Tensor& x_in) {
  // Every tensor the layers make is for the pass's stream (core/stream.h): its blocks are reused
  // by later work on that stream without waiting, and by other streams only after it.
  const StreamScope stream_scope(ctx.stream());
  check_image(x_in.shape());
  SG_CHECK(is_floating(x_in.dtype()), "efficientnet-", config_.arch, ": input ", x_in.str(),
           " must be f32, f16 or bf16");
  const Tensor x = cast_to(x_in, precision_, ctx.stream(), "efficientnet input");
  // A training forward moves the BN running statistics: the folded weights are stale.
  if (training()) drop_folded_weights();
  if (inference_fusion_ && inference_fusion_applies(*this, ctx)) return fused_forward(ctx, x);
  // Each part named for out-of-memory messages and the memory plan's peak (core/allocator.h).
  AllocationScope part("stem");
  Tensor h = bn1_->forward(ctx, conv_stem_->forward(ctx, x));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    part.relabel(blocks_[i]->name());
    h = block_checkpointed(i) ? checkpointed_forward(ctx, *blocks_[i], h) : blocks_[i]->forward(ctx, h);
  }
  part.relabel("head");
  h = bn2_->forward(ctx, conv_head_->forward(ctx, h));
  return cast_to(head_->forward(ctx, h), DType::f32, ctx.stream(), "efficientnet logits");
}

Tensor EfficientNet::fused_forward(Context& ctx, const Tensor& x) {
  if (!folds_) {
    folds_ = std::make_unique<EfficientNetFolds>();
    folds_->blocks.resize(blocks_.size());
  }
  const Stream& stream = ctx.stream();
  Tensor h = folds_->stem.forward(*conv_stem_, *bn1_, x, stream);
  for (size_t i = 0; i < blocks_.size(); ++i) h = fused_mbconv_forward(*blocks_[i], folds_->blocks[i], h, stream);
  h = folds_->head.forward(*conv_head_, *bn2_, h, stream);
  return cast_to(head_->forward(ctx, h), DType::f32, stream, "efficientnet logits");
}

Tensor EfficientNet::backward(Context& ctx, const Tensor& dy_in) {
  const StreamScope stream_scope(ctx.stream());  // as in forward
  const Tensor dy = cast_to(dy_in, precision_, ctx.stream(), "efficientnet dlogits");
  AllocationScope part("head");  // as in forward
  Tensor dh = head_->backward(ctx, dy);
  dh = conv_head_->backward(ctx, bn2_->backward(ctx, dh));
  for (size_t i = blocks_.size(); i-- > 0;) {
    part.relabel(blocks_[i]->name());
    dh = block_checkpointed(i) ? checkpointed_backward(ctx, *blocks_[i], dh) : blocks_[i]->backward(ctx, dh);
  }
  part.relabel("stem");
  const Tensor dx = conv_stem_->backward(ctx, bn1_->backward(ctx, dh));
  return dx.defined() ? cast_to(dx, DType::f32, ctx.stream(), "efficientnet dx") : dx;
}

std::string EfficientNet::export_onnx(OnnxGraph& graph, const std::string& x) const {
  // The layer-by-layer eval-mode network, in the graph's compute type: x NCHW -> logits [N, outputs].
  std::string h = bn1_->export_onnx(graph, conv_stem_->export_onnx(graph, x));
  for (const std::unique_ptr<MBConv>& block : blocks_) h = block->export_onnx(graph, h);
  h = bn2_->export_onnx(graph, conv_head_->export_onnx(graph, h));
  return head_->export_onnx(graph, h);
}

}  // namespace sg::nn
