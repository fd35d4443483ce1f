#pragma once
// Stratified k-fold splits of a PANDA table on (isup_grade, data_provider), saved as a CSV
// (image_id,fold) and reused, so every run of a cross-validation sees the same folds.
//
// Scheme (ours, not scikit-learn's StratifiedKFold): strata in order of (provider, grade); each
// stratum's rows shuffled (Fisher-Yates driven by Philox keyed by the seed, so the result does not
// depend on the standard library) and dealt round-robin to the folds, the dealing carrying on
// from fold to fold across strata. So each stratum's count per fold differs by at most 1 across
// folds, and so does each fold's total. Test tables (no grade) stratify on the provider alone.
#include <cstdint>
#include <string>
#include <vector>

#include "data/panda_dataset.h"

namespace sg::data {

struct Folds {
  int k = 0;
  std::vector<std::string> image_ids;  // the dataset's ids, in its row order
  std::vector<int> fold;               // fold[i] in [0, k) is the fold of image_ids[i]

  // Indices (into the dataset's rows) of the validation rows of fold f, and of the rest.
  std::vector<size_t> validation_rows(int f) const;
  std::vector<size_t> training_rows(int f) const;
};

// k >= 2 folds of the dataset, deterministic for a seed. An error when a fold would be empty
// (k larger than the number of rows).
Folds make_stratified_folds(const PandaDataset& dataset, int k, uint64_t seed);

// image_id,fold with a header; written atomically (core/atomic_file.h): a kill or a power cut
// leaves the previous file or the new one, never an empty or half one.
void save_folds(const std::string& path, const Folds& folds);
// Reads a folds file; k is one more than the largest fold. Errors name the file and line.
Folds load_folds(const std::string& path);

// Reuses `path` when it exists and holds the same k; when it holds another k it is remade and
// rewritten. An existing file whose ids differ from the dataset's (one missing or extra) is an
// error naming an example id: the split was made for another table, and silently remaking it
// would mix validation slides into training. The seed is used only when making the folds.
Folds load_or_make_folds(const std::string& path, const PandaDataset& dataset, int k, uint64_t seed);

}  // namespace sg::data
