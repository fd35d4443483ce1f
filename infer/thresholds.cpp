#include "infer/thresholds.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "data/csv.h"
#include "grading/model_card.h"
#include "weights/weight_file.h"

namespace sg::infer {

namespace fs = std::filesystem;

namespace {

int parse_int(const data::CsvTable& table, const data::CsvRecord& row, int column, const char* name) {
  const std::string& text = table.field(row, column);
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  SG_CHECK(error == std::errc() && end == text.data() + text.size(), table.path, ": line ", row.line, ": ", name, " '",
           text, "' is not an integer");
  return value;
}

double parse_double(const data::CsvTable& table, const data::CsvRecord& row, int column, const char* name) {
  const std::string& text = table.field(row, column);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  SG_CHECK(!text.empty() && end == text.c_str() + text.size() && std::isfinite(value), table.path, ": line ", row.line,
           ": ", name, " '", text, "' is not a finite number");
  return value;
}

double kappa_or_minus_infinity(std::span<const double> scores, std::span<const int> truth, const grading::Thresholds& t) {
  return qwk_with_thresholds(scores, truth, t).value_or(-std::numeric_limits<double>::infinity());
}

}  // namespace

std::vector<OofPrediction> read_oof_predictions(const std::string& path) {
  const data::CsvTable table = data::read_csv(path);
  const int id = table.require_column("image_id"), provider = table.require_column("data_provider"),
            grade = table.require_column("isup_grade"), fold = table.require_column("fold"),
            score = table.require_column("score"), prediction = table.require_column("prediction");
  std::vector<OofPrediction> rows;
  rows.reserve(table.rows.size());
  for (const data::CsvRecord& r : table.rows) {
    OofPrediction p;
    p.image_id = table.field(r, id);
    p.data_provider = table.field(r, provider);
    p.isup_grade = parse_int(table, r, grade, "isup_grade");
    SG_CHECK(p.isup_grade >= 0 && p.isup_grade <= 5, path, ": line ", r.line, ": isup_grade ", p.isup_grade,
             " is outside 0..5");
    p.fold = parse_int(table, r, fold, "fold");
    p.score = parse_double(table, r, score, "score");
    p.prediction = parse_int(table, r, prediction, "prediction");
    rows.push_back(std::move(p));
  }
  return rows;
}

std::vector<std::string> expand_run_folder(const std::string& rundir) {
  std::error_code error;
  SG_CHECK(fs::is_directory(rundir, error), rundir, ": no such run folder");
  if (fs::is_regular_file(fs::path(rundir) / "oof_predictions.csv", error)) return {rundir};
  std::vector<std::string> folds;
  for (const fs::directory_entry& entry : fs::directory_iterator(rundir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("fold", 0) == 0 &&
        fs::is_regular_file(entry.path() / "oof_predictions.csv", error))
      folds.push_back(entry.path().string());
  }
  SG_CHECK(!folds.empty(), rundir,
           ": no oof_predictions.csv (nor in fold*/ sub-folders); is it a finished "
           "slidegrade train run?");
  std::sort(folds.begin(), folds.end());
  return folds;
}

std::optional<double> qwk_with_thresholds(std::span<const double> scores, std::span<const int> truth,
                                          const grading::Thresholds& thresholds) {
  SG_CHECK(scores.size() == truth.size(), "thresholds: ", scores.size(), " scores for ", truth.size(), " grades");
  grading::ConfusionMatrix matrix;
  for (size_t i = 0; i < scores.size(); ++i) matrix.add(truth[i], grading::grade_from_score(scores[i], thresholds));
  return grading::quadratic_weighted_kappa(matrix);
}

grading::Thresholds tune_thresholds(std::span<const double> scores, std::span<const int> truth,
                                  const TuneOptions& options) {
  SG_CHECK(scores.size() == truth.size(), "thresholds: ", scores.size(), " scores for ", truth.size(), " grades");
  SG_CHECK(!scores.empty(), "thresholds: no predictions to tune on");
  SG_CHECK(options.step > 0, "thresholds: the search step must be positive, got ", options.step);
  for (size_t i = 1; i < 5; ++i)
    SG_CHECK(options.start[i - 1] <= options.start[i], "thresholds: the start ", grading::thresholds_text(options.start),
             " is not non-decreasing");
  const auto [lowest, highest] = std::minmax_element(scores.begin(), scores.end());
  grading::Thresholds t = options.start;
  double best = kappa_or_minus_infinity(scores, truth, t);
  for (int pass = 0; pass < options.max_passes; ++pass) {
    bool gained = false;
    for (size_t i = 0; i < 5; ++i) {
      // Grid points between the neighbours (inclusive), on multiples of step so the result does not
      // depend on where the search started.
      const double lo = i == 0 ? std::min(double(t[0]), *lowest - options.step) : double(t[i - 1]);
      const double hi = i == 4 ? std::max(double(t[4]), *highest + options.step) : double(t[i + 1]);
      const int64_t first = int64_t(std::ceil(lo / options.step - 1e-9));
      const int64_t last = int64_t(std::floor(hi / options.step + 1e-9));
      const float current = t[i];
      std::vector<float> values;
      std::vector<double> kappas;
      for (int64_t k = first; k <= last; ++k) {
        grading::Thresholds trial = t;
        trial[i] =
            std::clamp(float(double(k) * options.step), i == 0 ? -INFINITY : t[i - 1], i == 4 ? INFINITY : t[i + 1]);
        values.push_back(trial[i]);
        kappas.push_back(kappa_or_minus_infinity(scores, truth, trial));
      }
      const double top = kappas.empty() ? best : *std::max_element(kappas.begin(), kappas.end());
      if (!(top > best + 1e-12)) continue;
      // The best values form runs of neighbouring grid points (plateaus: QWK only changes where a
      // threshold crosses a score); take the middle of the run nearest the current value, the
      // cut farthest from the scores on either side.
      size_t chosen_begin = 0, chosen_end = 0;
      double chosen_distance = INFINITY;
      for (size_t a = 0; a < kappas.size();) {
        if (kappas[a] < top - 1e-12) {
          ++a;
          continue;
        }
        size_t b = a;
        while (b < kappas.size() && kappas[b] >= top - 1e-12) ++b;
        const double distance = std::min(std::abs(values[a] - current), std::abs(values[b - 1] - current));
        if (distance < chosen_distance) {
          chosen_distance = distance;
          chosen_begin = a;
          chosen_end = b;
        }
        a = b;
      }
      const size_t middle = chosen_begin + (chosen_end - chosen_begin - 1) / 2;
      t[i] = values[middle];
      best = kappas[middle];
      gained = true;
    }
    if (!gained) break;
  }
  return t;
}

void store_tuned_thresholds(const std::string& weights_path, const grading::Thresholds& thresholds) {
  std::error_code error;
  SG_CHECK(fs::is_regular_file(weights_path, error), weights_path, ": no such weight file");
  const WeightFileInfo info = read_weight_file_info(weights_path);
  SG_CHECK(!info.is_checkpoint, weights_path, ": is a training checkpoint; thresholds go into the best.h5 weights");
  WeightAttributes attributes = info.attributes;
  grading::ModelCard card = grading::read_model_card(attributes, weights_path);
  card.thresholds = thresholds;
  card.thresholds_tuned = true;
  write_model_card(card, attributes);
  // Every tensor as stored (shape and dtype), loaded strictly, written back unchanged.
  std::vector<NamedTensor> tensors;
  tensors.reserve(info.tensors.size());
  for (const StoredTensor& s : info.tensors)
    tensors.push_back({s.name, Tensor::empty(s.shape, s.dtype, Device::cpu(), "stored tensor")});
  load_weights(weights_path, tensors);
  save_weights(weights_path, tensors, attributes);
}

ThresholdTuning tune_run_thresholds(const std::vector<std::string>& rundirs, bool store, const TuneOptions& options) {
  SG_CHECK(!rundirs.empty(), "thresholds: no run folders given");
  ThresholdTuning result;
  std::vector<fs::path> seen;
  for (const std::string& rundir : rundirs)
    for (const std::string& run : expand_run_folder(rundir)) {
      // The same run twice would count its predictions twice.
      const fs::path canonical = fs::weakly_canonical(run);
      SG_CHECK(std::find(seen.begin(), seen.end(), canonical) == seen.end(), run,
               ": run folder given twice (its out-of-fold predictions would count twice)");
      seen.push_back(canonical);
      const std::string path = (fs::path(run) / "oof_predictions.csv").string();
      std::vector<OofPrediction> rows = read_oof_predictions(path);
      SG_CHECK(!rows.empty(), path, ": no predictions");
      result.rows.insert(result.rows.end(), rows.begin(), rows.end());
      result.runs.push_back(run);
    }
  if (store) {
    std::error_code error;
    for (const std::string& run : result.runs)
      SG_CHECK(fs::is_regular_file(fs::path(run) / "best.h5", error), (fs::path(run) / "best.h5").string(),
               ": missing (the thresholds are stored in each run's best.h5)");
  }
  std::vector<double> scores;
  std::vector<int> truth;
  for (const OofPrediction& p : result.rows) {
    scores.push_back(p.score);
    truth.push_back(p.isup_grade);
  }
  result.tuned = tune_thresholds(scores, truth, options);
  for (const OofPrediction& p : result.rows) {
    result.with_default.add(p.isup_grade, grading::grade_from_score(p.score, options.start), p.data_provider);
    result.with_tuned.add(p.isup_grade, grading::grade_from_score(p.score, result.tuned), p.data_provider);
    result.as_predicted.add(p.isup_grade, std::clamp(p.prediction, 0, 5), p.data_provider);
  }
  if (store)
    for (const std::string& run : result.runs) {
      const std::string path = (fs::path(run) / "best.h5").string();
      store_tuned_thresholds(path, result.tuned);
      result.updated.push_back(path);
    }
  return result;
}

}  // namespace sg::infer
