#pragma once
// Grading an archive on many machines: `slidegrade grade --shard K/N` grades a deterministic 1/N of
// the slides, and `slidegrade merge-grades` joins the N submissions into exactly the file one
// unsharded run writes. Scheduler-neutral: K comes from whatever the scheduler numbers its tasks
// with (Slurm's SLURM_ARRAY_TASK_ID, a Kubernetes indexed Job's JOB_COMPLETION_INDEX), from 0.
#include <string>
#include <string_view>
#include <vector>

#include "data/grades_csv.h"
#include "infer/slide_list.h"

namespace sg::infer {

struct GradeShard {
  int index = 0;  // K, 0 <= K < count
  int count = 1;  // N
};

// "K/N" with 0 <= K < N: a UsageError naming the text and the form otherwise.
GradeShard parse_grade_shard(std::string_view text);

// Shard K of N: slides K, K + N, K + 2N, ... of the list (its order is deterministic: test.csv's
// rows, or the slide files in name order), each with its provider. Round robin rather than blocks,
// so shards of a list sorted by provider or size get a similar mix.
SlidesToGrade grade_shard(const SlidesToGrade& all, const GradeShard& shard);

// The rows of the parts (submissions, data/grades_csv.h) in the order of `all`: what grading every
// slide at once writes. Refused, as an sg::Error naming them: a slide in two parts (and the parts),
// slides in no part, and rows of slides that are not in the list.
std::vector<data::SlideGrade> merge_grade_parts(const SlidesToGrade& all, const std::vector<std::string>& parts);

}  // namespace sg::infer
