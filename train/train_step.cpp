#include "train/train_step.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/loss.h"
#include "nn/non_finite_probe.h"
#include "nn/precision.h"

namespace sg::train {

namespace {

constexpr const char* kGrowthTrackerCounter = "loss_scale_growth_tracker";

// A diagnostic re-run is in the model's mode (the same batch statistics and masks), so it would
// move the BN running statistics a second time: keep copies and put them back.
using KeptBuffers = std::vector<std::pair<nn::Buffer*, Tensor>>;

KeptBuffers keep_buffers(nn::Module& model, const Stream& stream) {
  KeptBuffers kept;
  for (nn::Buffer* b : model.buffers()) {
    Tensor copy = Tensor::empty(b->value.shape(), b->value.dtype(), b->value.device(), "kept buffer");
    copy.copy_from(b->value, stream);
    kept.emplace_back(b, std::move(copy));
  }
  return kept;
}

void restore_buffers(KeptBuffers& kept, const Stream& stream) {
  for (auto& [buffer, copy] : kept) buffer->value.copy_from(copy, stream);
}

}  // namespace

LossKind parse_loss_kind(std::string_view name) { return parse_word(kLossKindWords, name); }

std::string_view loss_kind_name(LossKind kind) { return word_of(kLossKindWords, kind); }

TrainStep::TrainStep(nn::EfficientNet& model, Optimizer& optimizer, const TrainStepOptions& options)
    : model_(model),
      optimizer_(optimizer),
      options_(options),
      params_(model.parameters()),
      accumulation_(options.micro_batches) {
  SG_CHECK(options.label_smoothing >= 0.0f && options.label_smoothing <= 1.0f, "train step: label smoothing ",
           options.label_smoothing, " must be in [0, 1]");
  SG_CHECK(std::isfinite(options.max_grad_norm) && options.max_grad_norm >= 0.0f, "train step: max_grad_norm ",
           options.max_grad_norm, " must be finite and >= 0 (0: no clipping)");
  SG_CHECK(!params_.empty(), "train step: the model has no parameters");
  device_ = params_.front()->value.device();
  // Every model parameter must be stepped (and zeroed) by the optimizer.
  const std::set<const nn::Parameter*> stepped(optimizer.parameters().begin(), optimizer.parameters().end());
  for (const nn::Parameter* p : params_)
    SG_CHECK(stepped.count(p) != 0, "train step: model parameter '", p->name, "' is not in the optimizer");
  LossScaleState check = scaler_;  // validates loss_scale's factors and interval now, not at step 2000
  update_loss_scale(check, false, options.loss_scale);
  scaler_ = LossScaleState{options.loss_scale.init_scale, 0};
  set_loss_scale_state(scaler_);
}

void TrainStep::set_loss_scale_state(const LossScaleState& state) {
  SG_CHECK(std::isfinite(state.scale) && state.scale > 0.0f, "train step: loss scale ", state.scale,
           " must be finite and > 0");
  SG_CHECK(state.growth_tracker >= 0 && state.growth_tracker < options_.loss_scale.growth_interval,
           "train step: loss-scale growth tracker ", state.growth_tracker, " outside [0, ",
           options_.loss_scale.growth_interval, ")");
  scaler_ = state;
}

void TrainStep::set_step_index(int64_t step) {
  SG_CHECK(step >= 0, "train step: step index ", step, " must be >= 0");
  step_index_ = step;
}

void TrainStep::check_batch(const Batch& b) const {
  const int64_t outputs = model_.config().outputs;
  SG_CHECK(b.images.defined() && b.targets.defined(), "train step ", step_index_, ": the batch needs images and targets");
  SG_CHECK(b.images.device() == device_ && b.targets.device() == device_, "train step ", step_index_, ": images ",
           b.images.str(), " and targets ", b.targets.str(), " must be on the model's device ", device_.str());
  const int64_t n = b.images.rank() == 4 ? b.images.dim(0) : -1;
  if (options_.loss == LossKind::cross_entropy) {
    SG_CHECK(b.targets.dtype() == DType::i32 && b.targets.shape() == Shape{n}, "train step ", step_index_,
             ": cross-entropy targets are ", b.targets.str(), ", expected i32[", n, "] class indices");
  } else {
    SG_CHECK(b.targets.dtype() == DType::f32 && b.targets.shape() == (Shape{n, outputs}), "train step ",
             step_index_, ": ", loss_kind_name(options_.loss), " targets are ", b.targets.str(), ", expected f32[",
             n, ", ", outputs, "]");
  }
}

void TrainStep::loss_forward(const Tensor& logits, const Tensor& targets, Tensor& loss, const Stream& stream) const {
  switch (options_.loss) {
    case LossKind::cross_entropy:
      return cross_entropy_forward({Reduction::mean, options_.label_smoothing}, logits, targets, loss, stream);
    case LossKind::bce_with_logits: return bce_with_logits_forward(Reduction::mean, logits, targets, loss, stream);
    case LossKind::mse: return mse_loss_forward(Reduction::mean, logits, targets, loss, stream);
  }
}

void TrainStep::loss_backward(const Tensor& logits, const Tensor& targets, float grad_scale, Tensor& dlogits,
                              const Stream& stream) const {
  switch (options_.loss) {
    case LossKind::cross_entropy:
      return cross_entropy_backward({Reduction::mean, options_.label_smoothing}, logits, targets, grad_scale, dlogits,
                                    stream);
    case LossKind::bce_with_logits:
      return bce_with_logits_backward(Reduction::mean, logits, targets, grad_scale, dlogits, stream);
    case LossKind::mse: return mse_loss_backward(Reduction::mean, logits, targets, grad_scale, dlogits, stream);
  }
}

StepResult TrainStep::step(std::span<const Batch> micro_batches, const Stream& stream) {
  const int owed = accumulation_.micro_batches_per_step() - accumulation_.position();
  SG_CHECK(int64_t(micro_batches.size()) == owed, "train step ", step_index_, ": got ", micro_batches.size(),
           " micro-batches, the step needs ", owed, " more (", accumulation_.micro_batches_per_step(), " per step)");
  StepResult result;
  for (const Batch& b : micro_batches) result = micro_batch(b, stream);
  return result;
}

StepResult TrainStep::micro_batch(const Batch& batch, const Stream& stream) {
  // The step's tensors (loss, gradients' scratch, the optimizer's) are for its stream.
  const StreamScope stream_scope(stream);
  check_batch(batch);
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [&](Clock::time_point start) {
    stream.synchronize(device_);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  const auto forward_start = Clock::now();
  AllocationScope phase("forward");  // named in out-of-memory messages (core/allocator.h)
  const uint64_t rng_offset_before = rng_offset_;
  const float scale = loss_scale();
  const int micro_index = accumulation_.position();  // this micro-batch within the step, from 0
  std::optional<nn::Context> ctx(std::in_place, true, options_.seed, rng_offset_, stream);
  if (options_.gradient_fault) ctx->set_gradient_hook(fault_hook(micro_index));
  const Tensor logits = model_.forward(*ctx, batch.images);  // f32 [N, outputs]
  Tensor loss = Tensor::empty({1}, DType::f32, device_, "loss");
  loss_forward(logits, batch.targets, loss, stream);
  // Read on the step's stream, after the loss kernel (a default-stream copy would not wait for a
  // non-blocking stream; the default read waits for the whole device, loader copies included).
  // On the meta device (the memory plan runs this step there) nothing has a value: the plan is of
  // the step that applies, with a finite loss and finite gradients (core/meta_device.h).
  const float loss_value = device_.is_meta() ? 0.0f : loss.to_floats(stream).at(0);
  if (!std::isfinite(loss_value)) {
    ctx.reset();  // free what the failed forward kept before the diagnostic re-run
    report_non_finite_loss(batch, rng_offset_before, loss_value, stream);
  }
  times_.forward += seconds_since(forward_start);
  if (options_.after_forward) options_.after_forward();
  const auto backward_start = Clock::now();
  phase.relabel("backward and optimizer step");
  rng_offset_ = ctx->rng_offset();
  Tensor dlogits = Tensor::empty(logits.shape(), DType::f32, device_, "dlogits");
  loss_backward(logits, batch.targets, scale, dlogits, stream);
  model_.backward(*ctx, dlogits);  // adds (scaled) gradients into Parameter::grad
  // f32 / bf16: no loss scale to lower, so a non-finite gradient is an error, found where it
  // happens (the micro-batch is at hand for the diagnosis). f16 checks once per step, below.
  const bool gradients_bad = !loss_scaling() && gradients_non_finite(stream);
  times_.backward += seconds_since(backward_start);
  if (gradients_bad) {
    ctx.reset();
    report_non_finite_gradients(batch, micro_index, rng_offset_before, scale,
                                detail::concat("the gradients are not finite (the loss, ", loss_value, ", is)"), stream);
  }

  step_loss_sum_ += loss_value;
  ++step_micro_batches_;
  StepResult result;
  result.loss = loss_value;
  result.step = step_index_;
  result.loss_scale = loss_scale();
  const auto optimizer_start = Clock::now();
  if (!accumulation_.end_micro_batch(params_, stream)) {
    times_.optimizer += seconds_since(optimizer_start);
    return result;
  }
  result = finish_step(result, batch, rng_offset_before, scale, stream);
  times_.optimizer += seconds_since(optimizer_start);
  return result;
}

bool TrainStep::gradients_non_finite(const Stream& stream) {
  std::vector<Tensor*> grads;
  grads.reserve(params_.size());
  for (nn::Parameter* p : params_) grads.push_back(&p->grad);
  Tensor found_inf = Tensor::zeros({1}, DType::f32, device_, stream);
  non_finite_check_and_unscale(grads, found_inf, 1.0f, stream);  // a factor of 1: read only
  if (device_.is_meta()) return false;  // finite on meta, as the loss above
  return found_inf.to_floats(stream).at(0) != 0.0f;  // after the check, on its stream
}

nn::Context::GradientHook TrainStep::fault_hook(int micro_batch) const {
  if (!options_.gradient_fault) return {};
  return [this, micro_batch, step = step_index_](const std::string& layer, std::string_view gradient, Tensor& g) {
    options_.gradient_fault(step, micro_batch, layer, gradient, g);
  };
}

StepResult TrainStep::finish_step(StepResult result, const Batch& batch, uint64_t rng_offset, float scale,
                                  const Stream& stream) {
  result.completed = true;
  result.loss = float(step_loss_sum_ / double(step_micro_batches_));
  step_loss_sum_ = 0.0;
  step_micro_batches_ = 0;
  if (loss_scaling()) {
    std::vector<Tensor*> grads;
    grads.reserve(params_.size());
    for (nn::Parameter* p : params_) grads.push_back(&p->grad);
    Tensor found_inf = Tensor::zeros({1}, DType::f32, device_, stream);
    non_finite_check_and_unscale(grads, found_inf, 1.0f / scaler_.scale, stream);
    // After the check, on its stream; none on meta, as the loss above.
    const bool overflow = !device_.is_meta() && found_inf.to_floats(stream).at(0) != 0.0f;
    if (overflow) {
      LossScaleState next = scaler_;
      update_loss_scale(next, true, options_.loss_scale);
      if (next.scale < options_.loss_scale.min_scale)
        report_non_finite_gradients(
            batch, accumulation_.micro_batches_per_step() - 1, rng_offset, scale,
            detail::concat("the gradients are not finite at loss scale ", scaler_.scale, " (", consecutive_skips_,
                           " steps skipped in a row before this one); halving it would take it to ", next.scale,
                           ", below the floor of ", options_.loss_scale.min_scale,
                           ": the gradients do not fit f16 and the run is no longer training"),
            stream);
    }
    const bool apply = update_loss_scale(scaler_, overflow, options_.loss_scale);
    result.loss_scale = scaler_.scale;
    ++step_index_;
    if (!apply) {
      result.skipped = true;
      ++skipped_steps_;
      ++consecutive_skips_;
      optimizer_.zero_grad(stream);
      return result;
    }
    consecutive_skips_ = 0;
  } else {
    ++step_index_;
  }
  if (options_.max_grad_norm > 0.0f) result.grad_norm = optimizer_.clip_grad_norm(options_.max_grad_norm, stream);
  optimizer_.step(stream);
  optimizer_.zero_grad(stream);
  return result;
}

void TrainStep::report_non_finite_loss(const Batch& batch, uint64_t rng_offset, float loss, const Stream& stream) {
  std::string where;
  if (nn::has_non_finite(batch.images, stream)) {
    where = "the input images hold inf or NaN";
  } else {
    KeptBuffers kept = keep_buffers(model_, stream);
    nn::NonFiniteProbe probe;
    nn::Context ctx(false, options_.seed, rng_offset, stream);
    ctx.set_non_finite_probe(&probe);
    model_.forward(ctx, batch.images);
    restore_buffers(kept, stream);
    if (probe.found())
      where = "the first layer whose output was not finite is '" + probe.first_layer() + "'";
    else if (options_.loss != LossKind::cross_entropy && nn::has_non_finite(batch.targets, stream))
      where = "every layer's output was finite; the targets hold inf or NaN";
    else
      where = "every layer's output was finite; the loss itself overflowed";
  }
  throw Error(detail::concat("training step ", step_index_, " (micro-batch ", accumulation_.position() + 1, " of ",
                             accumulation_.micro_batches_per_step(), ", ", dtype_name(model_.precision()),
                             "): the ", loss_kind_name(options_.loss), " loss is ", loss, "; ", where));
}

void TrainStep::report_non_finite_gradients(const Batch& batch, int micro_batch, uint64_t rng_offset, float scale,
                                            const std::string& what, const Stream& stream) {
  // The fallback, read before the re-run clears them: the parameter closest to the loss
  // (params_ run from the stem to the classifier) whose accumulated gradient is not finite.
  std::string accumulated;
  for (auto it = params_.rbegin(); it != params_.rend() && accumulated.empty(); ++it)
    if (nn::has_non_finite((*it)->grad, stream)) accumulated = (*it)->name;
  optimizer_.zero_grad(stream);  // the step is abandoned: nothing of it is applied

  std::string where;
  if (nn::has_non_finite(batch.images, stream)) {
    where = "the input images hold inf or NaN";
  } else {
    // The re-run: the same masks (rng_offset), batch statistics and loss scale; every layer's
    // gradients go through the probe in backward order (and through the test's fault, if any).
    KeptBuffers kept = keep_buffers(model_, stream);
    nn::NonFiniteProbe probe;
    bool loss_gradient_bad = false;
    {
      nn::Context ctx(true, options_.seed, rng_offset, stream);
      const nn::Context::GradientHook fault = fault_hook(micro_batch);
      ctx.set_gradient_hook([&](const std::string& layer, std::string_view gradient, Tensor& g) {
        if (fault) fault(layer, gradient, g);
        probe.check(layer, g, stream, gradient);
      });
      const Tensor logits = model_.forward(ctx, batch.images);
      Tensor dlogits = Tensor::empty(logits.shape(), DType::f32, device_, "dlogits");
      loss_backward(logits, batch.targets, scale, dlogits, stream);
      loss_gradient_bad = nn::has_non_finite(dlogits, stream);
      if (!loss_gradient_bad) model_.backward(ctx, dlogits);
    }
    restore_buffers(kept, stream);
    optimizer_.zero_grad(stream);
    if (loss_gradient_bad)
      where = detail::concat("the loss gradient (times the loss scale ", scale, ") is not finite");
    else if (probe.found())
      where = "the first layer in backward order whose gradient was not finite is '" + probe.first_layer() +
              "' (its " + probe.first_what() + " gradient)";
    else if (!accumulated.empty())
      where = "re-running the micro-batch gave finite gradients; the parameter closest to the loss whose "
              "accumulated gradient was not finite is '" + accumulated + "'";
    else
      where = "re-running the micro-batch gave finite gradients";
  }
  // The step starts again from its first micro-batch if the caller goes on.
  accumulation_.set_position(0);
  step_loss_sum_ = 0.0;
  step_micro_batches_ = 0;
  throw Error(detail::concat("training step ", step_index_, " (micro-batch ", micro_batch + 1, " of ",
                             accumulation_.micro_batches_per_step(), ", ", dtype_name(model_.precision()), "): ", what,
                             "; ", where, "; the update was not applied"));
}

void TrainStep::save_progress(TrainingProgress& progress) const {
  SG_CHECK(accumulation_.position() == 0, "train step ", step_index_, ": cannot save in the middle of a step (",
           accumulation_.position(), " of ", accumulation_.micro_batches_per_step(),
           " micro-batches accumulated; gradients are not saved)");
  progress.step = step_index_;
  progress.loss_scale = scaler_.scale;
  progress.counters[kGrowthTrackerCounter] = scaler_.growth_tracker;
  progress.rng_seed = options_.seed;
  progress.rng_offset = rng_offset_;
}

void TrainStep::restore_progress(const TrainingProgress& progress) {
  SG_CHECK(progress.rng_seed == options_.seed, "train step: the checkpoint's rng_seed ", progress.rng_seed,
           " is not this run's seed ", options_.seed);
  const auto it = progress.counters.find(kGrowthTrackerCounter);
  const int64_t tracker = it == progress.counters.end() ? 0 : it->second;
  SG_CHECK(tracker >= 0 && tracker < options_.loss_scale.growth_interval, "train step: the checkpoint's ",
           kGrowthTrackerCounter, " ", tracker, " is outside [0, ", options_.loss_scale.growth_interval, ")");
  set_loss_scale_state(LossScaleState{float(progress.loss_scale), int(tracker)});
  set_step_index(progress.step);
  rng_offset_ = progress.rng_offset;
}

}  // namespace sg::train
