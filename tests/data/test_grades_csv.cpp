// Kaggle submission files: written atomically, read back in any column order, bad rows named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/grades_csv.h"
#include "tests/weights/temp_dir.h"

namespace sg::data {
namespace {

TEST(GradesCsv, WriteThenReadRoundTrips) {
  testing::TempDir dir;
  const std::string path = dir.file("submission.csv");
  const std::vector<SlideGrade> grades{{"0005f7aaab2800f6170c399693a96917", 0, 0}, {"id,with,commas", 5, 0}, {"x", 3, 0}};
  write_grades_csv(path, grades);
  EXPECT_TRUE(temporaries_of(path).empty());
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "image_id,isup_grade");
  const std::vector<SlideGrade> back = read_grades_csv(path);
  ASSERT_EQ(back.size(), grades.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].image_id, grades[i].image_id);
    EXPECT_EQ(back[i].isup_grade, grades[i].isup_grade);
    EXPECT_EQ(back[i].line, int(i) + 2);
  }
}

TEST(GradesCsv, BadRowsNameFileAndLine) {
  testing::TempDir dir;
  const auto expect_error = [&](const std::string& text, const std::string& needle) {
    const std::string path = dir.file("bad.csv");
    std::ofstream(path) << text;
    try {
      read_grades_csv(path);
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("image_id,isup_grade\na,1\nb,2.5\n", "line 3: b: isup_grade '2.5' is not an integer 0-5");
  expect_error("image_id,isup_grade\na,-1\n", "line 2: a: isup_grade '-1'");
  expect_error("image_id,isup_grade\na,1\na,2\n", "line 3: image_id a appears again (first on line 2)");
  expect_error("image_id,grade\na,1\n", "isup_grade");
  EXPECT_THROW(write_grades_csv(dir.file("no/such/folder/s.csv"), {}), Error);
}

}  // namespace
}  // namespace sg::data
