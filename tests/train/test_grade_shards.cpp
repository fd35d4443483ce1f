// Sharded grading (infer/grade_shards.h): K/N parsing, shards that partition the list in a fixed
// order, and merging the parts back into the unsharded submission, with overlapping, missing and
// foreign parts refused by name. The command line (grade --shard, merge-grades) against an
// unsharded run: GraderTest.CommandLine.
#include <gtest/gtest.h>

#include <set>

#include "core/usage_error.h"
#include "data/grades_csv.h"
#include "infer/grade_shards.h"
#include "tests/support/testing.h"
#include "tests/weights/temp_dir.h"

namespace sg::infer {
namespace {

SlidesToGrade slide_list(int n) {
  SlidesToGrade list;
  list.source = "test.csv";
  for (int i = 0; i < n; ++i) {
    list.slides.push_back({detail::concat("slide", i), detail::concat("slide", i, ".tiff"), -1});
    list.providers.push_back(i % 2 ? "karolinska" : "radboud");
  }
  return list;
}

std::vector<data::SlideGrade> grades_of(const SlidesToGrade& list) {
  std::vector<data::SlideGrade> grades;
  for (size_t i = 0; i < list.slides.size(); ++i) grades.push_back({list.slides[i].id, int(i * 7 % 6), 0});
  return grades;
}

TEST(GradeShards, ParsesKOfN) {
  EXPECT_EQ(parse_grade_shard("0/1").count, 1);
  const GradeShard s = parse_grade_shard("3/8");
  EXPECT_EQ(s.index, 3);
  EXPECT_EQ(s.count, 8);
  for (const char* bad : {"8/8", "-1/4", "1/0", "1", "1/", "/4", "a/b", "1/4/2", " 1/4", "1/4x", ""})
    testing::expect_error_containing([&] { parse_grade_shard(bad); }, {"--shard", "expected K/N with 0 <= K < N"});
  EXPECT_THROW(parse_grade_shard("9/4"), UsageError);
}

TEST(GradeShards, ShardsPartitionTheListInOrder) {
  testing::Rng rng;
  SG_TRACE_SEED(rng);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = int(rng.integer(0, 40)), count = int(rng.integer(1, 9));
    const SlidesToGrade all = slide_list(n);
    std::multiset<std::string> seen;
    for (int k = 0; k < count; ++k) {
      const SlidesToGrade part = grade_shard(all, {k, count});
      // A 1/N share: the shards' sizes differ by at most one.
      EXPECT_GE(int(part.slides.size()), n / count);
      EXPECT_LE(int(part.slides.size()), n / count + 1);
      ASSERT_EQ(part.providers.size(), part.slides.size());
      for (size_t i = 0; i < part.slides.size(); ++i) {
        const size_t original = size_t(k) + i * size_t(count);  // every N-th from the K-th, in order
        EXPECT_EQ(part.slides[i].id, all.slides[original].id);
        EXPECT_EQ(part.providers[i], all.providers[original]);
        seen.insert(part.slides[i].id);
      }
    }
    EXPECT_EQ(int(seen.size()), n);
    for (const data::SlideItem& s : all.slides) EXPECT_EQ(seen.count(s.id), 1u) << s.id;
  }
}

TEST(GradeShards, MergedPartsAreTheUnshardedSubmission) {
  testing::TempDir dir;
  const SlidesToGrade all = slide_list(11);
  const std::vector<data::SlideGrade> whole = grades_of(all);
  std::vector<std::string> parts;
  for (int k = 0; k < 3; ++k) {
    const SlidesToGrade part = grade_shard(all, {k, 3});
    std::vector<data::SlideGrade> rows;
    for (const data::SlideItem& s : part.slides)
      for (const data::SlideGrade& g : whole)
        if (g.image_id == s.id) rows.push_back(g);
    parts.push_back(dir.file(detail::concat("part", k, ".csv")));
    data::write_grades_csv(parts.back(), rows);
  }
  // Any order of the parts gives the list's order.
  const std::vector<std::string> shuffled{parts[2], parts[0], parts[1]};
  const std::vector<data::SlideGrade> merged = merge_grade_parts(all, shuffled);
  ASSERT_EQ(merged.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(merged[i].image_id, whole[i].image_id);
    EXPECT_EQ(merged[i].isup_grade, whole[i].isup_grade);
  }

  // A part given twice: the overlap names the slides and both files.
  testing::expect_error_containing([&] { merge_grade_parts(all, {parts[0], parts[1], parts[0], parts[2]}); },
                                   {"overlap", "slide0 (" + parts[0] + " and " + parts[0] + ")"});
  // A part missing: its slides are named.
  testing::expect_error_containing([&] { merge_grade_parts(all, {parts[0], parts[2]}); },
                                   {"4 slide(s) of test.csv are in no part", "slide1, slide4, slide7, slide10"});
  // Slides that are not in the list (a part of another test set).
  const std::string foreign = dir.file("foreign.csv");
  data::write_grades_csv(foreign, {{"elsewhere", 3, 0}});
  testing::expect_error_containing([&] { merge_grade_parts(all, {parts[0], parts[1], parts[2], foreign}); },
                                   {"not in test.csv", "elsewhere (" + foreign + ")"});
  testing::expect_error_containing([&] { merge_grade_parts(all, {}); }, "no part files");
}

}  // namespace
}  // namespace sg::infer
