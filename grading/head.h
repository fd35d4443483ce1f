#pragma once
// How the network's outputs encode an ISUP grade (docs/panda_and_openslide.md, section 7), shared by the trainer and
// the grader:
//   softmax   6 outputs, cross-entropy on the grade; prediction = argmax; score = expected grade
//             sum_k k * softmax_k (a continuous value thresholds can cut)
//   binned    5 outputs, BCE-with-logits; grade k sets the first k targets to 1;
//             score = sum of the 5 sigmoids; prediction = round(score) unless thresholds are given
//   regression 1 output, MSE on the grade; score = the output; prediction by thresholds
//             (default 0.5, 1.5, 2.5, 3.5, 4.5)
// Thresholds t1 <= ... <= t5 turn a score s into the number of thresholds below it: grade =
// #{i : s >= t_i}. The defaults for every head are 0.5 .. 4.5 (= rounding, clamped to 0..5).
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "core/option_words.h"

namespace sg::grading {

enum class HeadKind { softmax, binned, regression };

// The head words: softmax, binned, regression; anything else throws listing those.
inline constexpr OptionWord<HeadKind> kHeadKindWordList[] = {
    {HeadKind::softmax, "softmax"},
    {HeadKind::binned, "binned"},
    {HeadKind::regression, "regression"},
};
inline constexpr OptionWords<HeadKind> kHeadKindWords{"head", kHeadKindWordList};
HeadKind parse_head_kind(std::string_view name);
const char* head_kind_name(HeadKind kind);

int head_outputs(HeadKind kind);      // 6, 5, 1

using Thresholds = std::array<float, 5>;
constexpr Thresholds kDefaultThresholds{0.5f, 1.5f, 2.5f, 3.5f, 4.5f};
// "0.5,1.5,2.5,3.5,4.5" <-> Thresholds; parse throws unless 5 non-decreasing numbers.
Thresholds parse_thresholds(std::string_view text);
std::string thresholds_text(const Thresholds& thresholds);

// The training target of a grade 0..5: for softmax the class index (written as a float into
// targets[0]), for binned 5 floats, for regression the grade. targets.size() == head_outputs for
// binned and regression, 1 for softmax.
void head_targets(HeadKind kind, int grade, std::span<float> targets);

// One slide's outputs (head_outputs(kind) logits) -> the continuous score described above.
double head_score(HeadKind kind, std::span<const float> logits);
// A score -> a grade 0..5 by the thresholds.
int grade_from_score(double score, const Thresholds& thresholds = kDefaultThresholds);
// softmax: argmax of the logits (thresholds unused unless use_thresholds); others: by thresholds.
int head_grade(HeadKind kind, std::span<const float> logits, const Thresholds& thresholds = kDefaultThresholds,
               bool use_thresholds = false);

}  // namespace sg::grading
