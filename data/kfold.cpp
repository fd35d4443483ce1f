#include "data/kfold.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <sstream>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/philox.h"
#include "data/csv.h"

namespace sg::data {
namespace {

constexpr uint64_t kShuffleStream = 0x6b666f6c64ull;  // "kfold"

// Uniform integer in [0, bound) from 64 Philox bits (bias below 2^-32 for any table size here).
uint64_t draw_below(uint64_t seed, uint64_t stratum, uint64_t index, uint64_t bound) {
  const PhiloxOutput bits = philox_block(seed, kShuffleStream + stratum, index);
  const uint64_t word = (uint64_t(bits.v[0]) << 32) | bits.v[1];
  return word % bound;
}

}  // namespace

std::vector<size_t> Folds::validation_rows(int f) const {
  std::vector<size_t> rows;
  for (size_t i = 0; i < fold.size(); ++i)
    if (fold[i] == f) rows.push_back(i);
  return rows;
}

std::vector<size_t> Folds::training_rows(int f) const {
  std::vector<size_t> rows;
  for (size_t i = 0; i < fold.size(); ++i)
    if (fold[i] != f) rows.push_back(i);
  return rows;
}

Folds make_stratified_folds(const PandaDataset& dataset, int k, uint64_t seed) {
  SG_CHECK(k >= 2, "k-fold split of ", dataset.csv_path, ": k must be at least 2, got ", k);
  SG_CHECK(static_cast<size_t>(k) <= dataset.rows.size(), "k-fold split of ", dataset.csv_path, ": ", k,
           " folds but only ", dataset.rows.size(), " rows: some folds would be empty");
  // Strata keyed (provider, grade), in that order; rows in file order within each.
  std::map<std::pair<int, int>, std::vector<size_t>> strata;
  for (size_t i = 0; i < dataset.rows.size(); ++i) {
    const PandaRow& row = dataset.rows[i];
    strata[{static_cast<int>(row.provider), row.isup_grade}].push_back(i);
  }
  Folds folds;
  folds.k = k;
  folds.fold.assign(dataset.rows.size(), -1);
  for (const PandaRow& row : dataset.rows) folds.image_ids.push_back(row.image_id);
  int next_fold = 0;
  uint64_t stratum_index = 0;
  for (auto& [key, rows] : strata) {
    // Fisher-Yates, from the back.
    for (size_t i = rows.size(); i > 1; --i) {
      const size_t j = draw_below(seed, stratum_index, i, i);
      std::swap(rows[i - 1], rows[j]);
    }
    for (size_t row : rows) {
      folds.fold[row] = next_fold;
      next_fold = (next_fold + 1) % k;
    }
    ++stratum_index;
  }
  return folds;
}

void save_folds(const std::string& path, const Folds& folds) {
  SG_CHECK(folds.image_ids.size() == folds.fold.size(), "save_folds ", path, ": ", folds.image_ids.size(),
           " ids but ", folds.fold.size(), " folds");
  std::ostringstream out;
  out << "image_id,fold\n";
  for (size_t i = 0; i < folds.fold.size(); ++i) out << csv_field(folds.image_ids[i]) << ',' << folds.fold[i] << '\n';
  write_file_atomically(path, out.str());
}

Folds load_folds(const std::string& path) {
  const CsvTable table = read_csv(path);
  const int id_column = table.require_column("image_id");
  const int fold_column = table.require_column("fold");
  Folds folds;
  std::unordered_map<std::string, int> seen;
  for (const CsvRecord& row : table.rows) {
    const std::string& id = table.field(row, id_column);
    const std::string& value = table.field(row, fold_column);
    int f = -1;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), f);
    SG_CHECK(ec == std::errc() && end == value.data() + value.size() && f >= 0, path, ": line ", row.line,
             ": bad fold '", value, "' (expected an integer >= 0)");
    const auto [it, inserted] = seen.emplace(id, row.line);
    SG_CHECK(inserted, path, ": line ", row.line, ": duplicated image_id '", id, "' (first on line ", it->second, ")");
    folds.image_ids.push_back(id);
    folds.fold.push_back(f);
    folds.k = std::max(folds.k, f + 1);
  }
  SG_CHECK(!folds.fold.empty(), path, ": no rows");
  return folds;
}

Folds load_or_make_folds(const std::string& path, const PandaDataset& dataset, int k, uint64_t seed) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    const Folds saved = load_folds(path);
    std::unordered_map<std::string, int> fold_of;
    for (size_t i = 0; i < saved.image_ids.size(); ++i) fold_of.emplace(saved.image_ids[i], saved.fold[i]);
    Folds reordered;  // in the dataset's row order
    reordered.k = saved.k;
    for (const PandaRow& row : dataset.rows) {
      const auto it = fold_of.find(row.image_id);
      SG_CHECK(it != fold_of.end(), "folds file ", path, " was made for another table: it has no row for '",
               row.image_id, "' (", dataset.csv_path, " line ", row.line, "); delete it or pass another path");
      reordered.image_ids.push_back(row.image_id);
      reordered.fold.push_back(it->second);
    }
    if (saved.image_ids.size() != dataset.rows.size()) {
      std::unordered_map<std::string, bool> in_dataset;
      for (const PandaRow& row : dataset.rows) in_dataset.emplace(row.image_id, true);
      for (const auto& id : saved.image_ids) {
        SG_CHECK(in_dataset.count(id), "folds file ", path, " was made for another table: its id '", id,
                 "' is not in ", dataset.csv_path, "; delete it or pass another path");
      }
    }
    if (saved.k == k) return reordered;
  }
  Folds folds = make_stratified_folds(dataset, k, seed);
  save_folds(path, folds);
  return folds;
}

}  // namespace sg::data
