#include "grading/grade_evaluation.h"

#include <map>

#include "core/error.h"
#include "data/grades_csv.h"
#include "data/panda_dataset.h"

namespace sg::grading {

GradeEvaluation evaluate_grades(const std::string& truth_csv, const std::string& predictions_csv, bool partial) {
  const data::PandaDataset truth = data::read_panda_train_csv(truth_csv);
  const std::vector<data::SlideGrade> predictions = data::read_grades_csv(predictions_csv);
  std::map<std::string, const data::SlideGrade*> by_id;
  for (const data::SlideGrade& p : predictions) by_id[p.image_id] = &p;

  std::map<std::string, const data::PandaRow*> truth_by_id;
  for (const data::PandaRow& row : truth.rows) truth_by_id[row.image_id] = &row;
  for (const data::SlideGrade& p : predictions)
    SG_CHECK(truth_by_id.count(p.image_id), predictions_csv, ": line ", p.line, ": ", p.image_id, " is not in ",
             truth_csv);

  GradeEvaluation evaluation;
  evaluation.warnings = truth.warnings;
  std::string first_missing;
  for (const data::PandaRow& row : truth.rows) {
    const auto it = by_id.find(row.image_id);
    if (it == by_id.end()) {
      if (evaluation.missing++ == 0) first_missing = row.image_id;
      continue;
    }
    evaluation.report.add(row.isup_grade, it->second->isup_grade, std::string(data::provider_name(row.provider)));
  }
  SG_CHECK(evaluation.missing == 0 || partial, predictions_csv, ": ", evaluation.missing, " of the ", truth.rows.size(),
           " slides in ", truth_csv, " have no prediction (first: ", first_missing,
           "); --partial scores only those predicted");
  SG_CHECK(evaluation.report.overall.total() > 0, predictions_csv, ": no slide in common with ", truth_csv);
  return evaluation;
}

}  // namespace sg::grading
