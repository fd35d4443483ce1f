#pragma once
// The PANDA tables (docs/panda_and_openslide.md, section 6): train.csv (image_id, data_provider, isup_grade,
// gleason_score) and test.csv (image_id, data_provider), a header row in any column order, extra
// columns ignored; and where each slide and mask lives under the data directory.
//
// Errors (sg::Error, naming the file, the 1-based line and the value): a missing file or column,
// an unknown provider, a grade that is not an integer 0-5, a Gleason score that is not
// `negative` or P+S with P, S in 3-5 (or 0+0), a duplicated image_id. A Gleason score that
// disagrees with the ISUP grade is not an error: it is collected in `warnings`.
#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sg::data {

enum class Provider { karolinska, radboud };
std::string_view provider_name(Provider provider);

enum class PandaSplit { train, test };

// Primary + secondary Gleason pattern; `negative` and 0+0 are {0, 0}.
struct Gleason {
  int primary = 0;
  int secondary = 0;
  bool operator==(const Gleason&) const = default;
};

// ISUP grade of a Gleason score (3+3 -> 1, 3+4 -> 2, 4+3 -> 3, 4+4/3+5/5+3 -> 4, 4+5/5+4/5+5 -> 5,
// 0+0 -> 0), or -1 for a combination outside that table.
int isup_from_gleason(const Gleason& gleason);

struct PandaRow {
  std::string image_id;
  Provider provider = Provider::karolinska;
  int isup_grade = -1;   // 0-5; -1 in test.csv (no label)
  Gleason gleason;       // {0, 0} in test.csv
  int line = 0;          // 1-based line in the CSV, for messages
};

// Rows the PANDA community found wrong (docs/panda_and_openslide.md, section 6): a Gleason/ISUP mismatch and an
// all-white slide.
inline constexpr std::array<std::string_view, 2> kPandaKnownBadIds = {
    "b0a92a74cb53899311acc30b7405e101",  // Gleason 4+3 but ISUP 2
    "3790f55cad63053e956fb73027179707",  // an all-white slide
};
bool is_known_bad_panda_id(std::string_view image_id);

struct PandaReadOptions {
  bool exclude_known_bad = false;  // drop the kPandaKnownBadIds rows (listed in `excluded`)
};

struct PandaDataset {
  std::string csv_path;
  PandaSplit split = PandaSplit::train;
  std::vector<PandaRow> rows;           // file order
  std::vector<std::string> warnings;    // e.g. Gleason/ISUP mismatches, "file: line N: ..."
  std::vector<std::string> excluded;    // ids dropped by exclude_known_bad

  bool has_labels() const { return split == PandaSplit::train; }
};

PandaDataset read_panda_train_csv(const std::string& path, const PandaReadOptions& options = {});
PandaDataset read_panda_test_csv(const std::string& path, const PandaReadOptions& options = {});

// <data>/train_images/<id>.tiff (or test_images for the test split).
std::filesystem::path panda_slide_path(const std::filesystem::path& data_dir, std::string_view image_id,
                                       PandaSplit split = PandaSplit::train);
// <data>/train_label_masks/<id>_mask.tiff; about 100 PANDA slides have none, so callers check
// that it exists.
std::filesystem::path panda_mask_path(const std::filesystem::path& data_dir, std::string_view image_id);

// The ids of the dataset whose slide file does not exist (in row order): the loader skips and
// counts them.
std::vector<std::string> missing_panda_slides(const PandaDataset& dataset, const std::filesystem::path& data_dir);

}  // namespace sg::data
