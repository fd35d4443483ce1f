#include "infer/slide_list.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/csv.h"
#include "data/panda_dataset.h"

namespace sg::infer {

namespace fs = std::filesystem;

SlidesToGrade list_slides_to_grade(const std::string& dir) {
  std::error_code error;
  SG_CHECK(fs::is_directory(dir, error), dir, ": no such data folder");
  SlidesToGrade list;
  const fs::path test_csv = fs::path(dir) / "test.csv";
  if (fs::is_regular_file(test_csv, error)) {
    const data::PandaDataset test = data::read_panda_test_csv(test_csv.string());
    for (const data::PandaRow& row : test.rows) {
      list.slides.push_back(
          {row.image_id, data::panda_slide_path(dir, row.image_id, data::PandaSplit::test).string(), -1});
      list.providers.emplace_back(data::provider_name(row.provider));
    }
    list.source = detail::concat("the ", test.rows.size(), " rows of ", test_csv.string(), " (slides in ",
                                 (fs::path(dir) / "test_images").string(), ")");
    return list;
  }
  const fs::path images = fs::path(dir) / "test_images";
  const fs::path folder = fs::is_directory(images, error) ? images : fs::path(dir);
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    const bool mask = name.size() >= 10 && name.compare(name.size() - 10, 10, "_mask.tiff") == 0;
    if (entry.is_regular_file() && entry.path().extension() == ".tiff" && !mask) files.push_back(entry.path());
  }
  SG_CHECK(!error, folder.string(), ": cannot list: ", error.message());
  std::sort(files.begin(), files.end());
  SG_CHECK(!files.empty(), dir, ": no test.csv and no *.tiff slides in ", folder.string());
  for (const fs::path& file : files) {
    list.slides.push_back({file.stem().string(), file.string(), -1});
    list.providers.emplace_back();
  }
  list.source = detail::concat("no test.csv: the ", files.size(), " *.tiff slides in ", folder.string());
  return list;
}

void write_details_csv(const std::string& path, const SlidesToGrade& list, const std::vector<SlidePrediction>& rows,
                       const std::vector<std::string>& output_names) {
  SG_CHECK(rows.size() == list.slides.size() && list.providers.size() == list.slides.size(), path, ": ", rows.size(),
           " predictions for ", list.slides.size(), " slides");
  std::ostringstream out;
  out << "image_id,data_provider,score";
  for (const std::string& name : output_names) out << ',' << name;
  out << ",isup_grade,status\n";
  char number[32];
  for (size_t i = 0; i < rows.size(); ++i) {
    const SlidePrediction& p = rows[i];
    out << data::csv_field(p.image_id) << ',' << data::csv_field(list.providers[i]) << ',';
    if (p.ok) {
      std::snprintf(number, sizeof number, "%.6f", p.score);
      out << number;
    }
    for (size_t k = 0; k < output_names.size(); ++k) {
      out << ',';
      if (p.ok && k < p.outputs.size()) {
        std::snprintf(number, sizeof number, "%.6f", p.outputs[k]);
        out << number;
      }
    }
    out << ',' << p.grade << ',' << (p.ok ? "ok" : "failed") << '\n';
  }
  write_file_atomically(path, out.str());
}

}  // namespace sg::infer
