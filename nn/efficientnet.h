#pragma once
// EfficientNet B0-B7 and Lite0-4 built from modules (docs/efficientnet.md). Parameter names follow
// timm: conv_stem, bn1, blocks.{stage}.{j}.*, conv_head, bn2, classifier (+ global_pool.p for GeM).
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/conv2d_params.h"
#include "kernels/scalar_math.h"
#include "nn/batch_norm2d.h"
#include "nn/checkpointing.h"
#include "nn/conv2d.h"
#include "nn/head.h"
#include "nn/mbconv.h"

namespace sg::nn {

struct EfficientNetFolds;  // nn/inference_fusion.h

struct EfficientNetConfig {
  std::string arch = "b0";  // b0..b7, lite0..lite4
  // Scaling (from the table; overriding them makes a custom network).
  double width = 1.0, depth = 1.0;
  int64_t resolution = 224;  // the paper's input size (a default, not a requirement)
  bool lite = false;         // no SE, fixed stem 32 / head 1280, first/last stage not depth-scaled
  // Options.
  math::Activation activation = math::Activation::swish;
  Padding padding = Padding::symmetric;
  double bn_eps = 1e-5, bn_momentum = 0.1;  // PyTorch's momentum convention
  int64_t outputs = 1000;
  HeadPooling pooling = HeadPooling::avg;
  double dropout = 0.2;       // before the classifier
  double drop_connect = 0.2;  // block i of n gets drop_connect * i / n
  // Input normalisation, applied by whoever feeds the network (x/255 - mean) / std per channel.
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  uint64_t seed = 0;  // weight initialisation
};

// The defaults for a named arch ("b0".."b7", "lite0".."lite4", also "efficientnet_b0" /
// "efficientnet-b0"): torchvision's conventions for B (symmetric padding, BN eps 1e-5 and
// momentum 0.1 for B0-B4, 1e-3 / 0.01 for B5-B7), TF's for Lite (ReLU6, TF-SAME, eps 1e-3,
// (x - 127) / 128). Throws naming the arch and the known ones.
EfficientNetConfig efficientnet_config(std::string_view arch);
std::vector<std::string> efficientnet_arch_names();

// round_filters / round_repeats exactly as the reference implementations.
int64_t round_filters(int64_t filters, double width);
int64_t round_repeats(int64_t repeats, double depth);

// One stage after scaling.
struct StageSpec {
  int64_t kernel, repeats, in_channels, out_channels, expand_ratio, stride;
};
struct EfficientNetLayout {
  int64_t stem_channels = 0;
  std::vector<StageSpec> stages;
  int64_t head_channels = 0;
  int64_t block_count() const;
};
EfficientNetLayout efficientnet_layout(const EfficientNetConfig& config);
// The options of every MBConv block, in order: what the EfficientNet constructor builds (drop-connect
// rate i / n for block i of n, SE from the block's input).
std::vector<MBConvOptions> efficientnet_block_options(const EfficientNetConfig& config);

class EfficientNet final : public Module {
 public:
  explicit EfficientNet(const EfficientNetConfig& config, Device device = Device::cpu());
  ~EfficientNet() override;

  // x [N, H, W, 3] normalised input (any floating dtype; cast to precision() on entry) ->
  // logits [N, outputs], always f32 (for the loss).
  Tensor forward(Context& ctx, const Tensor& x) override;
  // dy [N, outputs] (any floating dtype; cast to precision()). Returns dx [N, H, W, 3] f32 only
  // after set_input_grad(true); otherwise an undefined tensor.
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;

  const EfficientNetConfig& config() const { return config_; }
  const EfficientNetLayout& layout() const { return layout_; }
  void set_input_grad(bool enabled) { conv_stem_->set_input_grad(enabled); }
  // The compute dtype of activations, conv and linear weights (nn/precision.h): f32 (default),
  // f16 or bf16. Master weights and gradients stay f32. Switching frees the compute copies.
  void set_precision(DType precision);
  DType precision() const { return precision_; }
  // The blocks in order (hook for gradient checkpointing, which wraps them).
  const std::vector<std::unique_ptr<MBConv>>& blocks() const { return blocks_; }
  // Gradient checkpointing of blocks (none by default). `automatic` must be resolved first
  // (train/memory_plan.h: choose_checkpointing).
  void set_checkpointing(const CheckpointPolicy& policy);
  bool block_checkpointed(size_t block) const { return block < checkpointed_.size() && checkpointed_[block]; }
  // Eval-mode forwards (not training, nothing kept for backward, no non-finite probe) fold each
  // BN into the convolution before it and fuse the SE gate into the projection
  // (nn/inference_fusion.h); on by default. Off: the layer-by-layer path, and the folded weights
  // are freed. The folded weights follow optimizer steps and mark_parameters_changed(*this) by
  // themselves; after writing BN running statistics in place by other means, call
  // drop_folded_weights().
  void set_inference_fusion(bool enabled);
  bool inference_fusion() const { return inference_fusion_; }
  void drop_folded_weights();
  // Bytes the folded weights hold now (0 until the first fused forward).
  size_t folded_weight_bytes() const;
  // Smallest input side accepted (the network downsamples by 32).
  static constexpr int64_t kMinImageSize = 32;

 protected:
  std::vector<Module*> children() override;

 private:
  void check_image(const Shape& input) const;
  // The eval-mode fused forward (inference_fusion_applies): x in precision() -> f32 logits.
  Tensor fused_forward(Context& ctx, const Tensor& x);
  EfficientNetConfig config_;
  EfficientNetLayout layout_;
  std::unique_ptr<Conv2d> conv_stem_;
  std::unique_ptr<BatchNorm2d> bn1_;
  std::vector<std::unique_ptr<MBConv>> blocks_;
  std::unique_ptr<Conv2d> conv_head_;
  std::unique_ptr<BatchNorm2d> bn2_;
  std::unique_ptr<Head> head_;
  std::vector<bool> checkpointed_;  // per block; empty: none
  DType precision_ = DType::f32;
  bool inference_fusion_ = true;
  std::unique_ptr<EfficientNetFolds> folds_;  // built by the first fused forward
};

}  // namespace sg::nn
