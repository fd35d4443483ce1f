#include "data/grades_csv.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

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
  const std::filesystem::path target(path);
  const std::filesystem::path temporary = target.string() + ".tmp";
  {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(temporary.c_str(), "wb"), std::fclose);
    SG_CHECK(file, path, ": cannot write (", temporary.string(), "): ", std::strerror(errno));
    bool ok = std::fputs("image_id,isup_grade\n", file.get()) >= 0;
    for (const SlideGrade& g : grades)
      ok = ok && std::fprintf(file.get(), "%s,%d\n", csv_field(g.image_id).c_str(), g.isup_grade) > 0;
    ok = ok && std::fflush(file.get()) == 0;
    const int saved_errno = errno;
    if (!ok) {
      file.reset();
      std::filesystem::remove(temporary);
      throw Error(detail::concat(path, ": writing the grades failed: ", std::strerror(saved_errno)));
    }
    FILE* raw = file.release();
    SG_CHECK(std::fclose(raw) == 0, path, ": closing failed: ", std::strerror(errno));
  }
  std::error_code error;
  std::filesystem::rename(temporary, target, error);
  SG_CHECK(!error, path, ": cannot rename ", temporary.string(), " into place: ", error.message());
}

}  // namespace sg::data
