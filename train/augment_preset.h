#pragma once
// The training augmentation presets a run config names (`augment`): default (the full
// data::AugmentConfig), light (weaker, rarer changes), none. The trainer turns a preset into a
// data::AugmentConfig.
#include "core/option_words.h"

namespace sg::train {

enum class AugmentPreset { standard, light, none };

inline constexpr OptionWord<AugmentPreset> kAugmentPresetWordList[] = {
    {AugmentPreset::standard, "default"},
    {AugmentPreset::light, "light"},
    {AugmentPreset::none, "none"},
};
inline constexpr OptionWords<AugmentPreset> kAugmentPresetWords{"augment preset", kAugmentPresetWordList};

}  // namespace sg::train
