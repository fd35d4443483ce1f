#include "train/gradient_accumulation.h"

#include "core/error.h"
#include "kernels/tensor_ops.h"

namespace sg::train {

GradientAccumulation::GradientAccumulation(int micro_batches_per_step)
    : micro_batches_per_step_(micro_batches_per_step) {
  SG_CHECK(micro_batches_per_step >= 1, "gradient accumulation: micro_batches_per_step is ", micro_batches_per_step,
           ", expected >= 1");
}

void GradientAccumulation::set_position(int position) {
  SG_CHECK(position >= 0 && position < micro_batches_per_step_, "gradient accumulation: position ", position,
           " outside [0, ", micro_batches_per_step_, ")");
  position_ = position;
}

bool GradientAccumulation::end_micro_batch(std::span<nn::Parameter* const> params, const Stream& stream) {
  if (position_ + 1 < micro_batches_per_step_) {
    ++position_;
    return false;
  }
  for (const nn::Parameter* p : params)  // every check before any gradient changes
    SG_CHECK(p != nullptr && p->grad.defined(), "gradient accumulation: parameter ",
             p ? "'" + p->name + "'" : std::string("(null)"), " has no gradient");
  if (micro_batches_per_step_ > 1) {
    const float inv_k = 1.0f / float(micro_batches_per_step_);
    for (nn::Parameter* p : params) scale(p->grad, inv_k, p->grad, stream);
  }
  position_ = 0;
  return true;
}

}  // namespace sg::train
