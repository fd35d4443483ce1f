#include "data/panda_dataset.h"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "core/error.h"
#include "data/csv.h"

namespace sg::data {
namespace {

std::string trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

// Where a row's problem is: "train.csv: line 7: ".
std::string at(const CsvTable& table, const CsvRecord& row) {
  return detail::concat(table.path, ": line ", row.line, ": ");
}

Provider parse_provider(const CsvTable& table, const CsvRecord& row, const std::string& value) {
  if (value == "karolinska") return Provider::karolinska;
  if (value == "radboud") return Provider::radboud;
  throw Error(at(table, row) + "unknown data_provider '" + value + "' (expected karolinska or radboud)");
}

int parse_grade(const CsvTable& table, const CsvRecord& row, const std::string& value) {
  int grade = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), grade);
  SG_CHECK(ec == std::errc() && end == value.data() + value.size() && grade >= 0 && grade <= 5, at(table, row),
           "unknown isup_grade '", value, "' (expected an integer 0-5)");
  return grade;
}

Gleason parse_gleason(const CsvTable& table, const CsvRecord& row, const std::string& value) {
  if (value == "negative") return {0, 0};
  const bool shape = value.size() == 3 && value[1] == '+' && value[0] >= '0' && value[0] <= '9' && value[2] >= '0' &&
                     value[2] <= '9';
  const Gleason g{shape ? value[0] - '0' : -1, shape ? value[2] - '0' : -1};
  SG_CHECK(shape && isup_from_gleason(g) >= 0, at(table, row), "unknown gleason_score '", value,
           "' (expected negative, 0+0 or P+S with P and S in 3-5)");
  return g;
}

PandaDataset read_panda(const std::string& path, PandaSplit split, const PandaReadOptions& options) {
  const CsvTable table = read_csv(path);
  const int id_column = table.require_column("image_id");
  const int provider_column = table.require_column("data_provider");
  const bool labelled = split == PandaSplit::train;
  const int grade_column = labelled ? table.require_column("isup_grade") : -1;
  const int gleason_column = labelled ? table.require_column("gleason_score") : -1;

  PandaDataset dataset;
  dataset.csv_path = path;
  dataset.split = split;
  dataset.rows.reserve(table.rows.size());
  std::unordered_map<std::string, int> first_line;  // image_id -> line where it first appears
  for (const CsvRecord& record : table.rows) {
    PandaRow row;
    row.line = record.line;
    row.image_id = trim(table.field(record, id_column));
    SG_CHECK(!row.image_id.empty(), at(table, record), "empty image_id");
    const auto [it, inserted] = first_line.emplace(row.image_id, record.line);
    SG_CHECK(inserted, at(table, record), "duplicated image_id '", row.image_id, "' (first on line ", it->second, ")");
    row.provider = parse_provider(table, record, trim(table.field(record, provider_column)));
    if (labelled) {
      row.isup_grade = parse_grade(table, record, trim(table.field(record, grade_column)));
      const std::string gleason = trim(table.field(record, gleason_column));
      row.gleason = parse_gleason(table, record, gleason);
      const int implied = isup_from_gleason(row.gleason);
      if (implied != row.isup_grade) {
        dataset.warnings.push_back(detail::concat(at(table, record), row.image_id, ": gleason_score ", gleason,
                                                  " means ISUP ", implied, " but isup_grade is ", row.isup_grade));
      }
    }
    if (options.exclude_known_bad && is_known_bad_panda_id(row.image_id)) {
      dataset.excluded.push_back(row.image_id);
      continue;
    }
    dataset.rows.push_back(std::move(row));
  }
  return dataset;
}

}  // namespace

std::string_view provider_name(Provider provider) {
  return provider == Provider::karolinska ? "karolinska" : "radboud";
}

int isup_from_gleason(const Gleason& g) {
  if (g.primary == 0 && g.secondary == 0) return 0;
  if (g.primary < 3 || g.primary > 5 || g.secondary < 3 || g.secondary > 5) return -1;
  const int sum = g.primary + g.secondary;
  if (sum == 6) return 1;
  if (sum == 7) return g.primary == 3 ? 2 : 3;
  if (sum == 8) return 4;
  return 5;  // 9 or 10
}

bool is_known_bad_panda_id(std::string_view image_id) {
  return std::find(kPandaKnownBadIds.begin(), kPandaKnownBadIds.end(), image_id) != kPandaKnownBadIds.end();
}

PandaDataset read_panda_train_csv(const std::string& path, const PandaReadOptions& options) {
  return read_panda(path, PandaSplit::train, options);
}

PandaDataset read_panda_test_csv(const std::string& path, const PandaReadOptions& options) {
  return read_panda(path, PandaSplit::test, options);
}

std::filesystem::path panda_slide_path(const std::filesystem::path& data_dir, std::string_view image_id,
                                       PandaSplit split) {
  return data_dir / (split == PandaSplit::train ? "train_images" : "test_images") /
         (std::string(image_id) + ".tiff");
}

std::filesystem::path panda_mask_path(const std::filesystem::path& data_dir, std::string_view image_id) {
  return data_dir / "train_label_masks" / (std::string(image_id) + "_mask.tiff");
}

std::vector<std::string> missing_panda_slides(const PandaDataset& dataset, const std::filesystem::path& data_dir) {
  std::vector<std::string> missing;
  for (const PandaRow& row : dataset.rows) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(panda_slide_path(data_dir, row.image_id, dataset.split), ec)) {
      missing.push_back(row.image_id);
    }
  }
  return missing;
}

}  // namespace sg::data
