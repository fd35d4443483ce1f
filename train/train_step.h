#pragma once
// One training step over an EfficientNet. For each micro-batch: forward (keeping what backward
// needs), loss, backward with the loss scale folded into the loss gradient; in f32 and bf16 the
// check for non-finite gradients; once per step (on the k-th micro-batch,
// train/gradient_accumulation.h): in f16 that check and the unscaling, optional gradient-norm
// clipping, the optimizer step, zero_grad.
//
// Precision is the model's (nn::EfficientNet::set_precision). f16 uses dynamic loss scaling,
// torch.cuda.amp.GradScaler's rule (kernels/optimizer.h): scale 2^16 at first; a step whose
// gradients hold inf/NaN is skipped (no update, gradients zeroed) and the scale halves; after
// growth_interval good steps in a row it doubles. f32 and bf16 run with scale 1.
//
// Numerical guards (no silent numerical failure):
// - A non-finite LOSS is an error in every precision (in f16 it means the forward itself
//   overflowed, which no loss scale can fix): the micro-batch's forward is re-run with the same
//   dropout masks and a nn::NonFiniteProbe, and sg::Error names the step, the micro-batch and
//   the first layer whose output was not finite (or the input, or the loss itself).
// - Non-finite GRADIENTS in f32 and bf16 are an error: after every micro-batch's backward one
//   read-only pass over all parameter gradients (non_finite_check_and_unscale with factor 1)
//   finds them; the micro-batch's forward and backward are re-run with the same masks and a
//   gradient hook (nn/non_finite_probe.h), and sg::Error names the step, the micro-batch and the
//   first layer in backward order (closest to the loss) with a non-finite gradient: a
//   parameter's gradient or its input gradient dx. If the re-run is finite (the fault did not
//   repeat), it names the parameter closest to the loss whose accumulated gradient was not.
// - In f16 non-finite gradients are an overflow: skip and halve, as above. When a skip would
//   take the scale below LossScaleParams::min_scale (1: the true gradients do not fit f16) it
//   is an error instead, with the same diagnosis of the step's last micro-batch.
// In every error the update is not applied, the gradients are zeroed and the BN running
// statistics are restored after the re-run, so they move once, as in the failed pass.
//
// Resuming: loss_scale_state(), step_index() and rng_offset() are the state to keep;
// save_progress / restore_progress move them to and from a checkpoint's TrainingProgress.
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string_view>

#include "kernels/optimizer.h"
#include "core/option_words.h"
#include "nn/efficientnet.h"
#include "train/gradient_accumulation.h"
#include "train/optimizer.h"
#include "weights/checkpoint_file.h"

namespace sg::train {

enum class LossKind { cross_entropy, bce_with_logits, mse };
// The loss words: cross_entropy (ce), bce_with_logits (bce), mse; throws naming the value.
inline constexpr OptionWord<LossKind> kLossKindWordList[] = {
    {LossKind::cross_entropy, "cross_entropy", {"ce"}},
    {LossKind::bce_with_logits, "bce_with_logits", {"bce"}},
    {LossKind::mse, "mse"},
};
inline constexpr OptionWords<LossKind> kLossKindWords{"loss", kLossKindWordList};
LossKind parse_loss_kind(std::string_view name);
std::string_view loss_kind_name(LossKind kind);

struct TrainStepOptions {
  LossKind loss = LossKind::cross_entropy;
  float label_smoothing = 0.0f;  // cross-entropy only, in [0, 1]
  int micro_batches = 1;         // gradient accumulation: micro-batches per optimizer step
  float max_grad_norm = 0.0f;    // > 0: clip the global L2 norm of the (unscaled) gradients
  LossScaleParams loss_scale;    // f16 only (init 2^16, x2 after 2000 good steps, x0.5 on inf)
  uint64_t seed = 0;             // Philox seed of dropout and drop-connect
  // Tests only (fault injection; no run config sets it): called during backward with the step,
  // the micro-batch within it (from 0) and each gradient a layer produced, as a
  // nn::Context::GradientHook (layer, "weight" / "bias" / "input", the tensor, which it may
  // overwrite, e.g. plant an inf). Also called in the diagnostic re-run, so a planted fault
  // repeats there.
  std::function<void(int64_t step, int micro_batch, const std::string& layer, std::string_view gradient, Tensor& g)>
      gradient_fault;
  // Called after each micro-batch's forward and loss, before its backward (the memory plan reads
  // what the forward left live there). Empty by default.
  std::function<void()> after_forward;
};

// One micro-batch on the model's device. images [N, H, W, 3], normalised, any floating dtype
// (cast to the model's precision). targets: i32 [N] class indices for cross-entropy; f32
// [N, outputs] for BCE-with-logits and MSE. Each micro-batch's loss is its mean.
struct Batch {
  Tensor images;
  Tensor targets;
};

// Wall-clock seconds spent in each part of micro_batch / step, summed since the last reset
// (the stream is synchronised before each clock reading, so device work is counted where it runs).
struct StepTimes {
  double forward = 0;    // forward and loss
  double backward = 0;   // loss gradient and backward
  double optimizer = 0;  // unscaling, clipping, the update, zero_grad
};

struct StepResult {
  bool completed = false;  // this call reached the optimizer step (applied or skipped)
  bool skipped = false;    // completed, but f16 gradients held inf/NaN: nothing was applied
  float loss = 0.0f;       // this micro-batch's loss; once completed, the mean over the step's micro-batches
  float loss_scale = 1.0f;  // the scale after this call (1 unless f16)
  float grad_norm = std::numeric_limits<float>::quiet_NaN();  // before clipping; NaN unless clipped
  int64_t step = 0;         // the step this micro-batch belongs to (0 for the first)
};

class TrainStep {
 public:
  // The optimizer must hold the model's parameters. The model's mode (set_training) is the
  // caller's.
  TrainStep(nn::EfficientNet& model, Optimizer& optimizer, const TrainStepOptions& options);

  // The micro-batches still owed to the current step (options.micro_batches when it starts),
  // then the update: exactly one optimizer step. The result is the last micro-batch's.
  StepResult step(std::span<const Batch> micro_batches, const Stream& stream = {});
  // One micro-batch: forward, loss, backward; on the step's last micro-batch also the update.
  StepResult micro_batch(const Batch& batch, const Stream& stream = {});

  const TrainStepOptions& options() const { return options_; }
  bool loss_scaling() const { return model_.precision() == DType::f16; }
  // The scale the next backward uses (1 unless f16).
  float loss_scale() const { return loss_scaling() ? scaler_.scale : 1.0f; }
  LossScaleState loss_scale_state() const { return scaler_; }
  void set_loss_scale_state(const LossScaleState& state);
  // Steps completed so far (applied or skipped): the number of the step in progress.
  int64_t step_index() const { return step_index_; }
  void set_step_index(int64_t step);
  uint64_t rng_offset() const { return rng_offset_; }
  void set_rng_offset(uint64_t offset) { rng_offset_ = offset; }
  const GradientAccumulation& accumulation() const { return accumulation_; }
  const StepTimes& times() const { return times_; }
  // f16 steps skipped for non-finite gradients since construction, and in a row until now.
  int64_t skipped_steps() const { return skipped_steps_; }
  int64_t consecutive_skipped_steps() const { return consecutive_skips_; }
  void reset_times() { times_ = {}; }

  // step, loss_scale, counters["loss_scale_growth_tracker"], rng_seed, rng_offset. Between
  // steps only (the accumulated gradients are not saved): throws in the middle of one.
  void save_progress(TrainingProgress& progress) const;
  // The reverse; a missing growth tracker reads as 0. Throws when rng_seed is not options.seed.
  void restore_progress(const TrainingProgress& progress);

 private:
  void check_batch(const Batch& batch) const;
  void loss_forward(const Tensor& logits, const Tensor& targets, Tensor& loss, const Stream& stream) const;
  void loss_backward(const Tensor& logits, const Tensor& targets, float grad_scale, Tensor& dlogits,
                     const Stream& stream) const;
  StepResult finish_step(StepResult result, const Batch& batch, uint64_t rng_offset, float scale,
                         const Stream& stream);
  bool gradients_non_finite(const Stream& stream);
  nn::Context::GradientHook fault_hook(int micro_batch) const;
  [[noreturn]] void report_non_finite_loss(const Batch& batch, uint64_t rng_offset, float loss,
                                           const Stream& stream);
  // what: the first sentence after "training step S (micro-batch k of K, dtype): ".
  [[noreturn]] void report_non_finite_gradients(const Batch& batch, int micro_batch, uint64_t rng_offset,
                                                float scale, const std::string& what, const Stream& stream);

  nn::EfficientNet& model_;
  Optimizer& optimizer_;
  TrainStepOptions options_;
  std::vector<nn::Parameter*> params_;
  Device device_;
  GradientAccumulation accumulation_;
  LossScaleState scaler_;
  int64_t step_index_ = 0;
  uint64_t rng_offset_ = 0;
  double step_loss_sum_ = 0.0;  // over the current step's micro-batches
  int step_micro_batches_ = 0;
  StepTimes times_;
  int64_t skipped_steps_ = 0;
  int64_t consecutive_skips_ = 0;
};

}  // namespace sg::train
