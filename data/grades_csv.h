#pragma once
// Kaggle's PANDA submission format: `image_id,isup_grade`, one row per slide, grades 0-5. Written
// by `slidegrade grade`, read by `slidegrade evaluate`.
#include <string>
#include <vector>

namespace sg::data {

struct SlideGrade {
  std::string image_id;
  int isup_grade = 0;
  int line = 0;  // 1-based line in the file read (0 when not read from a file)
};

// Any column order, extra columns ignored; an id seen twice, a grade that is not an integer 0-5,
// a missing column or file: an sg::Error naming the file and line.
std::vector<SlideGrade> read_grades_csv(const std::string& path);

// Writes atomically (core/atomic_file.h), so neither a reader, a kill nor a power cut ever sees
// half a submission; an sg::Error naming the file when the disk refuses.
void write_grades_csv(const std::string& path, const std::vector<SlideGrade>& grades);

}  // namespace sg::data
