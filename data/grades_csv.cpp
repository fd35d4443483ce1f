#include "data/grades_csv.h"

#include <charconv>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/csv.h"

namespace sg::data {

std::vector<SlideGrade> read_grades_csv(const std::string& path) {
  const CsvTable table = read_csv(path);
  const int id_column = table.require_column("image_id");
  const int grade_column = table.require_column("isup_grade");
  std::vector<SlideGrade> grades;
  std::map<std::string, int> first_line;
  for (const CsvRecord& row : table.rows) {
    const std::string& id = table.field(row, id_column);
    const std::string& text = table.field(row, grade_column);
    SG_CHECK(!id.empty(), path, ": line ", row.line, ": empty image_id");
    int grade = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), grade);
    SG_CHECK(error == std::errc() && end == text.data() + text.size() && grade >= 0 && grade <= 5, path, ": line ",
             row.line, ": ", id, ": isup_grade '", text, "' is not an integer 0-5");
    const auto [it, inserted] = first_line.emplace(id, row.line);
    SG_CHECK(inserted, path, ": line ", row.line, ": image_id ", id, " appears again (first on line ", it->second, ")");
    grades.push_back({id, grade, row.line});
  }
  return grades;
}

void write_grades_csv(const std::string& path, const std::vector<SlideGrade>& grades) {
  std::string text = "image_id,isup_grade\n";
  for (const SlideGrade& g : grades) text += csv_field(g.image_id) + ',' + std::to_string(g.isup_grade) + '\n';
  write_file_atomically(path, text);
}

}  // namespace sg::data
