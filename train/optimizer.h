#pragma once
// Optimizers over a network's parameters: SGD (momentum, Nesterov) and AdamW, PyTorch 1.13
// semantics (torch.optim.SGD / torch.optim.AdamW), built on the per-tensor update kernels of
// kernels/optimizer.h.
//
//   - State tensors (f32, each parameter's shape, on the parameter's device) are allocated,
//     zeroed, when the optimizer is built, so the memory plan can count them.
//   - Weight decay can skip biases and normalisation parameters (Parameter::is_bias_or_norm),
//     like a PyTorch param group with weight_decay 0.
//   - One learning rate for every parameter, set before each step by the schedule (set_lr).
//   - The state is visible as named tensors ("<param name>/momentum_buffer",
//     "<param name>/exp_avg", "<param name>/exp_avg_sq") plus steps_taken(), so a checkpoint
//     can save it and load_state() can restore it.
//
// Gradients are read from Parameter::grad and must have the value's shape; the optimizer never
// scales them (see gradient_accumulation.h for micro-batches, and kernels' loss-scale helpers).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "nn/parameter.h"

namespace sg::train {

struct SgdOptions {
  float lr = 0.01f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;  // coupled (added to the gradient), as torch.optim.SGD
  bool nesterov = false;      // needs momentum > 0 and dampening 0
  bool exempt_bias_and_norm_from_weight_decay = false;
};

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;  // decoupled: p *= 1 - lr * wd
  bool exempt_bias_and_norm_from_weight_decay = false;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string_view kind() const = 0;  // "sgd", "adamw"

  float lr() const { return lr_; }
  void set_lr(float lr);  // finite and >= 0
  // Optimizer steps applied so far (PyTorch's per-parameter "step"; AdamW's bias correction).
  int64_t steps_taken() const { return steps_taken_; }
  std::span<nn::Parameter* const> parameters() const { return params_; }
  // Whether weight decay applies to this parameter.
  bool decays(const nn::Parameter& p) const { return !(exempt_bias_and_norm_ && p.is_bias_or_norm); }

  // Checks every parameter's gradient first (defined, floating, the value's shape and device),
  // so a bad gradient leaves every parameter untouched; then updates all, bumps each
  // Parameter::version (so f16/bf16 compute copies are re-cast) and counts the step.
  void step(const Stream& stream = {});
  // Every gradient = 0 (backward adds into the gradients).
  void zero_grad(const Stream& stream = {});
  // torch.nn.utils.clip_grad_norm_ over every parameter's gradient: scales them all by
  // max_norm / (total + 1e-6) when that is below 1. Returns the total L2 norm before clipping.
  float clip_grad_norm(float max_norm, const Stream& stream = {});

  // The state as named tensors sharing storage with the optimizer (read them to save).
  std::vector<nn::Buffer> state() const { return state_; }
  // Restores a saved state: every one of our names must be present with our shape, and no
  // other name may appear; all problems are reported together, by name, before anything is
  // written. Tensors may be on any device (copied to ours); dtype f32.
  void load_state(std::span<const nn::Buffer> tensors, int64_t steps_taken, const Stream& stream = {});

 protected:
  Optimizer(std::vector<nn::Parameter*> params, float lr, bool exempt_bias_and_norm);
  // Adds a zeroed state tensor "<param name>/<suffix>" for parameter i; returns its index in
  // the state list.
  size_t add_state(size_t param_index, std::string_view suffix);
  Tensor& state_tensor(size_t index) { return state_[index].value; }
  // Updates parameter i; steps_taken() is still the count before this step.
  virtual void update(size_t param_index, nn::Parameter& param, const Stream& stream) = 0;

 private:
  void check_gradients(std::string_view what) const;

  std::vector<nn::Parameter*> params_;
  std::vector<nn::Buffer> state_;
  float lr_;
  bool exempt_bias_and_norm_;
  int64_t steps_taken_ = 0;
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<nn::Parameter*> params, const SgdOptions& options);
  std::string_view kind() const override { return "sgd"; }
  const SgdOptions& options() const { return options_; }

 private:
  void update(size_t param_index, nn::Parameter& param, const Stream& stream) override;
  SgdOptions options_;
  std::vector<size_t> momentum_index_;  // per parameter, into the state (momentum != 0 only)
};

class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<nn::Parameter*> params, const AdamWOptions& options);
  std::string_view kind() const override { return "adamw"; }
  const AdamWOptions& options() const { return options_; }

 private:
  void update(size_t param_index, nn::Parameter& param, const Stream& stream) override;
  AdamWOptions options_;
  std::vector<size_t> exp_avg_index_, exp_avg_sq_index_;  // per parameter, into the state
};

// An optimizer chosen by name (from a config file or a flag): a word of nn::kOptimizerWords. The fields
// that the chosen kind does not use are ignored.
struct OptimizerConfig {
  std::string name = "adamw";
  float lr = 1e-3f;
  float weight_decay = 1e-2f;
  bool exempt_bias_and_norm_from_weight_decay = false;
  float momentum = 0.9f;  // sgd
  float dampening = 0.0f;
  bool nesterov = false;
  float beta1 = 0.9f;  // adamw
  float beta2 = 0.999f;
  float eps = 1e-8f;
};
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, std::vector<nn::Parameter*> params);

}  // namespace sg::train
