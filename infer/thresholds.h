#pragma once
// Thresholds tuned on out-of-fold predictions (`slidegrade thresholds RUNDIR...`): the cut points
// t1 <= ... <= t5 that turn a continuous score into a grade (grading/head.h grade_from_score), chosen
// to maximise QWK on the pooled validation scores of the given runs, and stored in each run's
// best.h5 model card (thresholds_tuned=1), where `slidegrade grade` finds them.
//
// Search (deterministic): start at 0.5, 1.5, ..., 4.5; for each threshold in turn try every value
// on a grid of `step` (multiples of step, between its neighbours; the first and last go to just
// beyond the lowest / highest score) and move it only when QWK strictly rises, to the middle of
// the run of best grid values nearest the current one (the cut farthest from the scores on either
// side); repeat passes until a pass gains nothing. QWK therefore never falls below the starting
// thresholds'.
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "grading/head.h"
#include "grading/quadratic_weighted_kappa.h"

namespace sg::infer {

// One row of RUNDIR/oof_predictions.csv: image_id,data_provider,isup_grade,fold,score,prediction
// (train/trainer.h).
struct OofPrediction {
  std::string image_id;
  std::string data_provider;
  int isup_grade = 0;
  int fold = -1;
  double score = 0;
  int prediction = 0;
};

// Throws sg::Error naming the file and line (missing file or column, a grade outside 0..5, a
// score that is not a finite number).
std::vector<OofPrediction> read_oof_predictions(const std::string& path);

// The run folders a RUNDIR stands for: itself when it holds oof_predictions.csv, else its
// fold<k>/ sub-folders that do (a `--folds all` run). Throws naming RUNDIR when there are none.
std::vector<std::string> expand_run_folder(const std::string& rundir);

// QWK of the grades the thresholds give the scores (nullopt when undefined).
std::optional<double> qwk_with_thresholds(std::span<const double> scores, std::span<const int> truth,
                                          const grading::Thresholds& thresholds);

struct TuneOptions {
  grading::Thresholds start = grading::kDefaultThresholds;
  double step = 0.01;
  int max_passes = 200;
};
// scores and truth have the same length (throws otherwise, or when empty).
grading::Thresholds tune_thresholds(std::span<const double> scores, std::span<const int> truth,
                                  const TuneOptions& options = {});

// Rewrites a weight file with a model card (atomically, same tensors and attributes) with these
// thresholds and thresholds_tuned=1. Throws naming the file when it is missing, has no card or
// is a training checkpoint.
void store_tuned_thresholds(const std::string& weights_path, const grading::Thresholds& thresholds);

struct ThresholdTuning {
  std::vector<std::string> runs;  // the run folders pooled
  std::vector<OofPrediction> rows;
  grading::Thresholds tuned = grading::kDefaultThresholds;
  grading::KappaReport with_default, with_tuned, as_predicted;  // per data_provider
  std::vector<std::string> updated;                           // best.h5 files written
};
// Reads every run's oof_predictions.csv, pools them, tunes, and (when `store`) writes the tuned
// thresholds into each run's best.h5. Every best.h5 is checked to exist before any is written.
ThresholdTuning tune_run_thresholds(const std::vector<std::string>& rundirs, bool store = true,
                                    const TuneOptions& options = {});

}  // namespace sg::infer
