#pragma once
// The classifier head: global pooling -> dropout -> linear.
//   [N, H, W, C] -> pool [N, F] (F = C, or 2C for concat avg+max) -> dropout -> [N, outputs]
// Names: "<prefix>global_pool.p" (GeM's learnable exponent), "<prefix>classifier.{weight,bias}"
// (weight [outputs, F], PyTorch's Linear layout).
#include <string_view>

#include "core/option_words.h"
#include "nn/module.h"

namespace sg::nn {

enum class HeadPooling { avg, max, gem, avg_max };
// The pooling words: avg, max, gem, avgmax (avg_max, concat).
inline constexpr OptionWord<HeadPooling> kHeadPoolingWordList[] = {
    {HeadPooling::avg, "avg"},
    {HeadPooling::max, "max"},
    {HeadPooling::gem, "gem"},
    {HeadPooling::avg_max, "avgmax", {"avg_max", "concat"}},
};
inline constexpr OptionWords<HeadPooling> kHeadPoolingWords{"head pooling", kHeadPoolingWordList};
HeadPooling parse_head_pooling(std::string_view name);  // parse_word(kHeadPoolingWords, name)
std::string_view head_pooling_name(HeadPooling pooling);

struct HeadOptions {
  int64_t in_channels = 0;
  int64_t outputs = 1000;
  HeadPooling pooling = HeadPooling::avg;
  double dropout = 0.0;
  double gem_p = 3.0;  // initial GeM exponent
};

class Head final : public Module {
 public:
  // prefix "" gives the top-level names timm uses ("classifier.weight").
  Head(std::string name, const HeadOptions& options, Device device, uint64_t seed);

  Tensor forward(Context& ctx, const Tensor& x) override;
  Tensor backward(Context& ctx, const Tensor& dy) override;
  Shape describe(const Shape& input, std::vector<LayerInfo>* layers) const override;
  std::string export_onnx(OnnxGraph& graph, const std::string& x) const override;

  const HeadOptions& options() const { return options_; }
  int64_t features() const { return options_.pooling == HeadPooling::avg_max ? 2 * options_.in_channels
                                                                              : options_.in_channels; }

 protected:
  void own_state(std::vector<Parameter*>& params, std::vector<Buffer*>& buffers) override;

 private:
  struct Saved {
    Shape input_shape;     // [N, H, W, C], for dx
    Tensor features_t;     // [N, F] the classifier's input (after dropout)
    Tensor argmax;         // [N, C] i32 winners of max pooling (max and avg_max only)
    Tensor gem_input;      // the input x, for GeM's gradient (gem only)
    bool dropout_drawn = false;
    uint64_t rng_offset = 0;  // where the dropout mask was drawn
    std::vector<const Tensor*> tensors() const { return {&features_t, &argmax, &gem_input}; }
  };
  HeadOptions options_;
  Parameter gem_p_;  // only for GeM
  Parameter weight_, bias_;
};

}  // namespace sg::nn
