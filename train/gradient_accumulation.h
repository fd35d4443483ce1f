#pragma once
// Gradient accumulation: one optimizer step every k micro-batches, with the gradient of the
// whole (k x micro-batch) batch.
//
// Backward ADDS into Parameter::grad, and each micro-batch's loss is the mean over that
// micro-batch, so after k backward passes the gradients hold the SUM of k micro-batch means.
// end_micro_batch() divides them by k on the k-th micro-batch, which gives the mean over all
// k * b samples: the same gradient as one big batch (equal micro-batch sizes). The loss itself
// is not divided. Usage:
//
//   GradientAccumulation accumulation(k);
//   for each micro-batch: forward, loss, backward;
//     if (accumulation.end_micro_batch(params)) { clip; optimizer.step(); optimizer.zero_grad(); }
#include <span>

#include "core/stream.h"
#include "nn/parameter.h"

namespace sg::train {

class GradientAccumulation {
 public:
  explicit GradientAccumulation(int micro_batches_per_step);

  int micro_batches_per_step() const { return micro_batches_per_step_; }
  // Micro-batches already accumulated towards the next step (0 .. k-1); saved with the data
  // position on a checkpoint.
  int position() const { return position_; }
  void set_position(int position);

  // Call after each micro-batch's backward. Returns true when this was the k-th micro-batch:
  // the gradients have then been scaled by 1/k and the caller should step (and zero them).
  bool end_micro_batch(std::span<nn::Parameter* const> params, const Stream& stream = {});

 private:
  int micro_batches_per_step_;
  int position_ = 0;
};

}  // namespace sg::train
