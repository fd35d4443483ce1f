#pragma once
// The training loss that goes with each way of encoding a grade (grading/head.h): the grader needs
// the encoding, only the trainer needs the loss.
#include "grading/head.h"
#include "train/train_step.h"

namespace sg::train {

LossKind head_loss(grading::HeadKind kind);  // softmax: cross_entropy, binned: bce_with_logits, regression: mse

}  // namespace sg::train
