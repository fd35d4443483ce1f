#pragma once
// Predicted ISUP grades (a Kaggle submission file) scored against the truth (a PANDA train.csv-style
// file): `slidegrade evaluate` and the Python package's evaluate() print or return this.
#include <cstddef>
#include <string>
#include <vector>

#include "grading/quadratic_weighted_kappa.h"

namespace sg::grading {

struct GradeEvaluation {
  KappaReport report;                 // overall and per data provider
  size_t missing = 0;                 // slides of the truth without a prediction (partial only)
  std::vector<std::string> warnings;  // the truth file's (rows left out, ...)
};

// Throws sg::Error naming the file: a prediction for a slide the truth does not have, slides of the
// truth without a prediction (unless `partial`: then only the predicted ones are scored), no slide
// in common, and every error of the CSV readers.
GradeEvaluation evaluate_grades(const std::string& truth_csv, const std::string& predictions_csv, bool partial);

}  // namespace sg::grading
