#pragma once
// Test-time augmentation of a slide's mosaic: the views the grader scores and averages.
//   none      1 view: the mosaic as it is
//   flips     4 views: identity, left-right flip, up-down flip, both (= rotation by 180)
//   dihedral  8 views: the symmetries of a square, rotations by 0/90/180/270 degrees
//             counter-clockwise, each with and without a left-right flip afterwards
// For a non-square mosaic the quarter turns swap its width and height (the network takes any size
// of at least 32 px; the grader batches views of one shape together).
#include <string_view>
#include <vector>

#include "core/option_words.h"
#include "data/image.h"

namespace sg::data {

enum class TtaMode { none, flips, dihedral };

// The TTA words: none, flips, dihedral; anything else throws listing those.
inline constexpr OptionWord<TtaMode> kTtaModeWordList[] = {
    {TtaMode::none, "none"},
    {TtaMode::flips, "flips"},
    {TtaMode::dihedral, "dihedral"},
};
inline constexpr OptionWords<TtaMode> kTtaModeWords{"TTA mode", kTtaModeWordList};
TtaMode parse_tta_mode(std::string_view name);
const char* tta_mode_name(TtaMode mode);
int tta_view_count(TtaMode mode);  // 1, 4, 8

// The views of `mosaic` in the order above (view 0 is the mosaic itself).
std::vector<Image> tta_views(const Image& mosaic, TtaMode mode);

}  // namespace sg::data
