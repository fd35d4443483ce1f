#pragma once
// Which optimizer a run uses, and its words: adamw, sgd. Here in nn/ rather than train/ because
// the memory plan (train/memory_plan.h) counts the optimizer's state tensors; train/optimizer.h
// builds the optimizers themselves.
#include "core/option_words.h"

namespace sg::nn {

enum class OptimizerKind { adamw, sgd };

inline constexpr OptionWord<OptimizerKind> kOptimizerWordList[] = {
    {OptimizerKind::adamw, "adamw"},
    {OptimizerKind::sgd, "sgd"},
};
inline constexpr OptionWords<OptimizerKind> kOptimizerWords{"optimizer", kOptimizerWordList};

}  // namespace sg::nn
