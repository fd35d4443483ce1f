// Stratified k-fold: every id in one fold, strata balanced to within one row, deterministic for
// a seed, saved and reused, and the clear errors (empty folds, a file made for another table).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "data/kfold.h"

namespace sg::data {
namespace {

namespace fs = std::filesystem;

// A table of `n` rows with grades and providers spread unevenly, like PANDA's.
PandaDataset synthetic_table(int n, uint64_t seed) {
  std::mt19937_64 engine(seed);
  PandaDataset d;
  d.csv_path = "synthetic.csv";
  for (int i = 0; i < n; ++i) {
    PandaRow row;
    row.image_id = "slide" + std::to_string(i);
    row.provider = (engine() % 3 == 0) ? Provider::karolinska : Provider::radboud;
    row.isup_grade = static_cast<int>(engine() % 10 < 4 ? 0 : engine() % 6);
    row.line = i + 2;
    d.rows.push_back(row);
  }
  return d;
}

fs::path temp_file(const std::string& stem) {
  return fs::temp_directory_path() / (stem + "_" + std::to_string(std::random_device{}()) + ".csv");
}

TEST(KFold, EveryRowInOneFoldAndStrataBalanced) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "table seed " << seed);
  const PandaDataset d = synthetic_table(503, seed);
  for (int k : {2, 5, 7}) {
    const Folds folds = make_stratified_folds(d, k, 42);
    ASSERT_EQ(folds.fold.size(), d.rows.size());
    std::map<std::pair<int, int>, std::vector<int>> per_stratum;  // stratum -> count per fold
    std::vector<int> totals(k, 0);
    for (size_t i = 0; i < d.rows.size(); ++i) {
      ASSERT_GE(folds.fold[i], 0);
      ASSERT_LT(folds.fold[i], k);
      EXPECT_EQ(folds.image_ids[i], d.rows[i].image_id);
      auto& counts = per_stratum[{static_cast<int>(d.rows[i].provider), d.rows[i].isup_grade}];
      counts.resize(k, 0);
      ++counts[folds.fold[i]];
      ++totals[folds.fold[i]];
    }
    for (const auto& [stratum, counts] : per_stratum) {
      const auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
      EXPECT_LE(*hi - *lo, 1) << "k " << k << " stratum " << stratum.first << "/" << stratum.second;
    }
    const auto [lo, hi] = std::minmax_element(totals.begin(), totals.end());
    EXPECT_LE(*hi - *lo, 1) << "k " << k;
    // validation and training rows partition the table.
    size_t validation = 0;
    for (int f = 0; f < k; ++f) {
      validation += folds.validation_rows(f).size();
      EXPECT_EQ(folds.validation_rows(f).size() + folds.training_rows(f).size(), d.rows.size());
    }
    EXPECT_EQ(validation, d.rows.size());
  }
}

TEST(KFold, DeterministicForASeed) {
  const PandaDataset d = synthetic_table(200, 3);
  const Folds a = make_stratified_folds(d, 5, 11);
  const Folds b = make_stratified_folds(d, 5, 11);
  EXPECT_EQ(a.fold, b.fold);
  const Folds c = make_stratified_folds(d, 5, 12);
  EXPECT_NE(a.fold, c.fold);
}

TEST(KFold, EmptyFoldIsAnError) {
  const PandaDataset d = synthetic_table(4, 1);
  try {
    make_stratified_folds(d, 5, 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5 folds but only 4 rows"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_stratified_folds(d, 1, 0), Error);
}

TEST(KFold, SaveLoadAndReuse) {
  const fs::path path = temp_file("sg_folds");
  const PandaDataset d = synthetic_table(60, 9);
  const Folds made = load_or_make_folds(path.string(), d, 4, 1);
  ASSERT_TRUE(fs::exists(path));
  const Folds loaded = load_folds(path.string());
  EXPECT_EQ(loaded.k, 4);
  EXPECT_EQ(loaded.image_ids, made.image_ids);
  EXPECT_EQ(loaded.fold, made.fold);

  // Reused: another seed does not change an existing file's folds, whatever the row order.
  PandaDataset shuffled = d;
  std::reverse(shuffled.rows.begin(), shuffled.rows.end());
  const Folds reused = load_or_make_folds(path.string(), shuffled, 4, 999);
  for (size_t i = 0; i < shuffled.rows.size(); ++i) {
    EXPECT_EQ(reused.image_ids[i], shuffled.rows[i].image_id);
    EXPECT_EQ(reused.fold[i], made.fold[d.rows.size() - 1 - i]);
  }

  // Another k: remade and rewritten.
  const Folds five = load_or_make_folds(path.string(), d, 5, 1);
  EXPECT_EQ(five.k, 5);
  EXPECT_EQ(load_folds(path.string()).k, 5);

  // A table with an id the file lacks, or without one the file has: an error naming the id.
  PandaDataset extra = d;
  extra.rows.push_back(PandaRow{"newcomer", Provider::radboud, 3, {4, 3}, 99});
  const auto message_for = [&](const PandaDataset& table) {
    try {
      load_or_make_folds(path.string(), table, 5, 1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message_for(extra).find("no row for 'newcomer'"), std::string::npos) << message_for(extra);
  PandaDataset fewer = d;
  const std::string dropped = fewer.rows.back().image_id;
  fewer.rows.pop_back();
  EXPECT_NE(message_for(fewer).find("its id '" + dropped + "' is not in"), std::string::npos) << message_for(fewer);
  // No temporary files left beside it.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(path.parent_path()))
    files += entry.path().filename().string().rfind(path.filename().string(), 0) == 0;
  EXPECT_EQ(files, 1);
  fs::remove(path);
}

TEST(KFold, BadFoldsFileNamesTheLine) {
  const fs::path path = temp_file("sg_badfolds");
  std::ofstream(path) << "image_id,fold\na,0\nb,x\n";
  try {
    load_folds(path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": line 3: bad fold 'x'"), std::string::npos) << e.what();
  }
  fs::remove(path);
}

}  // namespace
}  // namespace sg::data
