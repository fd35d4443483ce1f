#include "train/optimizer.h"

#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "core/error.h"
#include "kernels/optimizer.h"
#include "nn/optimizer_kind.h"

namespace sg::train {

Optimizer::Optimizer(std::vector<nn::Parameter*> params, float lr, bool exempt_bias_and_norm)
    : params_(std::move(params)), lr_(0.0f), exempt_bias_and_norm_(exempt_bias_and_norm) {
  SG_CHECK(!params_.empty(), "optimizer: no parameters to optimise");
  std::set<std::string_view> names;
  for (size_t i = 0; i < params_.size(); ++i) {
    const nn::Parameter* p = params_[i];
    SG_CHECK(p != nullptr, "optimizer: parameter ", i, " is null");
    SG_CHECK(p->value.defined(), "optimizer: parameter '", p->name, "' has no value");
    SG_CHECK(p->value.dtype() == DType::f32, "optimizer: parameter '", p->name, "' is ", p->value.str(),
             ", expected f32 master weights");
    SG_CHECK(names.insert(p->name).second, "optimizer: parameter name '", p->name,
             "' appears twice (state is saved by name)");
  }
  set_lr(lr);
}

void Optimizer::set_lr(float lr) {
  SG_CHECK(std::isfinite(lr) && lr >= 0.0f, "optimizer: learning rate ", lr, " must be finite and >= 0");
  lr_ = lr;
}

size_t Optimizer::add_state(size_t param_index, std::string_view suffix) {
  const nn::Parameter& p = *params_[param_index];
  state_.push_back({p.name + "/" + std::string(suffix), Tensor::zeros(p.value.shape(), DType::f32, p.value.device())});
  return state_.size() - 1;
}

void Optimizer::check_gradients(std::string_view what) const {
  for (const nn::Parameter* p : params_) {
    SG_CHECK(p->grad.defined(), kind(), " ", what, ": parameter '", p->name, "' has no gradient");
    SG_CHECK(is_floating(p->grad.dtype()), kind(), " ", what, ": parameter '", p->name, "' has gradient ",
             p->grad.str(), ", expected a floating dtype");
    SG_CHECK(p->grad.shape() == p->value.shape(), kind(), " ", what, ": parameter '", p->name,
             "' has gradient of shape ", p->grad.shape().str(), ", expected its value's shape ",
             p->value.shape().str());
    SG_CHECK(p->grad.device() == p->value.device(), kind(), " ", what, ": parameter '", p->name,
             "' has its value on ", p->value.device().str(), " and its gradient on ", p->grad.device().str());
  }
}

void Optimizer::step(const Stream& stream) {
  check_gradients("step");
  for (size_t i = 0; i < params_.size(); ++i) {
    update(i, *params_[i], stream);
    params_[i]->mark_changed();  // the f16/bf16 compute copy is re-cast at the next forward
  }
  ++steps_taken_;
}

void Optimizer::zero_grad(const Stream& stream) {
  for (nn::Parameter* p : params_)
    if (p->grad.defined()) p->grad.zero_(stream);
}

float Optimizer::clip_grad_norm(float max_norm, const Stream& stream) {
  SG_CHECK(std::isfinite(max_norm) && max_norm > 0.0f, kind(), " clip_grad_norm: max_norm ", max_norm,
           " must be finite and > 0");
  check_gradients("clip_grad_norm");
  std::vector<Tensor*> grads;
  grads.reserve(params_.size());
  for (nn::Parameter* p : params_) grads.push_back(&p->grad);
  return sg::clip_grad_norm(grads, max_norm, stream);
}

void Optimizer::load_state(std::span<const nn::Buffer> tensors, int64_t steps_taken, const Stream& stream) {
  SG_CHECK(steps_taken >= 0, kind(), " load_state: steps_taken is ", steps_taken, ", expected >= 0");
  std::map<std::string_view, const Tensor*> given;
  std::string problems;
  for (const nn::Buffer& b : tensors) {
    if (!given.emplace(b.name, &b.value).second) problems += "\n  '" + b.name + "' given twice";
  }
  for (const nn::Buffer& ours : state_) {
    const auto it = given.find(ours.name);
    if (it == given.end()) {
      problems += "\n  '" + ours.name + "' missing (expected f32" + ours.value.shape().str() + ")";
      continue;
    }
    const Tensor& t = *it->second;
    if (!t.defined() || t.dtype() != DType::f32 || t.shape() != ours.value.shape())
      problems += "\n  '" + ours.name + "' is " + (t.defined() ? t.str() : std::string("undefined")) +
                  ", expected f32" + ours.value.shape().str();
    given.erase(it);
  }
  for (const auto& [name, tensor] : given)
    problems += "\n  '" + std::string(name) + "' is not state of this " + std::string(kind()) + " optimizer";
  SG_CHECK(problems.empty(), kind(), " load_state: the saved optimizer state does not match:", problems);

  std::map<std::string_view, const Tensor*> by_name;
  for (const nn::Buffer& b : tensors) by_name.emplace(b.name, &b.value);
  for (nn::Buffer& ours : state_) ours.value.copy_from(*by_name.at(ours.name), stream);
  steps_taken_ = steps_taken;
}

// ---- SGD ----------------------------------------------------------------------------------

Sgd::Sgd(std::vector<nn::Parameter*> params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr, options.exempt_bias_and_norm_from_weight_decay), options_(options) {
  SG_CHECK(options.momentum >= 0.0f && options.weight_decay >= 0.0f, "sgd: momentum ", options.momentum,
           " and weight_decay ", options.weight_decay, " must be >= 0");
  SG_CHECK(!options.nesterov || (options.momentum > 0.0f && options.dampening == 0.0f),
           "sgd: Nesterov momentum needs momentum > 0 and dampening 0 (momentum ", options.momentum,
           ", dampening ", options.dampening, ")");
  if (options.momentum != 0.0f) {
    for (size_t i = 0; i < parameters().size(); ++i) momentum_index_.push_back(add_state(i, "momentum_buffer"));
  }
}

void Sgd::update(size_t param_index, nn::Parameter& param, const Stream& stream) {
  const SgdParams s{lr(), options_.momentum, options_.dampening, decays(param) ? options_.weight_decay : 0.0f,
                    options_.nesterov};
  Tensor* buf = momentum_index_.empty() ? nullptr : &state_tensor(momentum_index_[param_index]);
  // PyTorch starts the buffer as a copy of the first gradient.
  sgd_step(s, param.value, param.grad, buf, steps_taken() == 0, stream);
}

// ---- AdamW --------------------------------------------------------------------------------

AdamW::AdamW(std::vector<nn::Parameter*> params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr, options.exempt_bias_and_norm_from_weight_decay), options_(options) {
  SG_CHECK(options.eps >= 0.0f && options.weight_decay >= 0.0f, "adamw: eps ", options.eps, " and weight_decay ",
           options.weight_decay, " must be >= 0");
  SG_CHECK(options.beta1 >= 0.0f && options.beta1 < 1.0f && options.beta2 >= 0.0f && options.beta2 < 1.0f,
           "adamw: betas (", options.beta1, ", ", options.beta2, ") must be in [0, 1)");
  for (size_t i = 0; i < parameters().size(); ++i) {
    exp_avg_index_.push_back(add_state(i, "exp_avg"));
    exp_avg_sq_index_.push_back(add_state(i, "exp_avg_sq"));
  }
}

void AdamW::update(size_t param_index, nn::Parameter& param, const Stream& stream) {
  const AdamWParams a{lr(), options_.beta1, options_.beta2, options_.eps,
                      decays(param) ? options_.weight_decay : 0.0f};
  adamw_step(a, steps_taken() + 1, param.value, param.grad, state_tensor(exp_avg_index_[param_index]),
             state_tensor(exp_avg_sq_index_[param_index]), stream);
}

// ---- by name ------------------------------------------------------------------------------

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& c, std::vector<nn::Parameter*> params) {
  switch (parse_word(nn::kOptimizerWords, c.name)) {
    case nn::OptimizerKind::sgd:
      return std::make_unique<Sgd>(std::move(params), SgdOptions{c.lr, c.momentum, c.dampening, c.weight_decay,
                                                                  c.nesterov, c.exempt_bias_and_norm_from_weight_decay});
    case nn::OptimizerKind::adamw:
      return std::make_unique<AdamW>(std::move(params), AdamWOptions{c.lr, c.beta1, c.beta2, c.eps, c.weight_decay,
                                                                     c.exempt_bias_and_norm_from_weight_decay});
  }
  throw Error("make_optimizer: unhandled optimizer kind");
}

}  // namespace sg::train
