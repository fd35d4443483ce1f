#include "train/head_loss.h"

namespace sg::train {

LossKind head_loss(grading::HeadKind kind) {
  switch (kind) {
    case grading::HeadKind::softmax: return LossKind::cross_entropy;
    case grading::HeadKind::binned: return LossKind::bce_with_logits;
    case grading::HeadKind::regression: return LossKind::mse;
  }
  return LossKind::cross_entropy;
}

}  // namespace sg::train
