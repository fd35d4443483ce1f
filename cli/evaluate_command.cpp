// slidegrade evaluate --truth train.csv --pred submission.csv: PANDA's metric (quadratic weighted
// kappa) overall and per data provider, accuracy and the confusion matrix.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "data/grades_csv.h"
#include "data/panda_dataset.h"
#include "grading/quadratic_weighted_kappa.h"

namespace sg::cli {

namespace {
struct EvaluateOptions {
  std::string truth, predictions;
  bool partial = false;
};

void print_matrix(const grading::ConfusionMatrix& m) {
  std::printf("confusion matrix (rows: true ISUP grade, columns: predicted)\n      ");
  for (int j = 0; j < grading::kIsupGrades; ++j) std::printf("%6d", j);
  std::printf("\n");
  for (int i = 0; i < grading::kIsupGrades; ++i) {
    std::printf("  %d   ", i);
    for (int j = 0; j < grading::kIsupGrades; ++j) std::printf("%6lld", static_cast<long long>(m.counts[size_t(i)][size_t(j)]));
    std::printf("\n");
  }
}

int run_evaluate(const EvaluateOptions& o) {
  const data::PandaDataset truth = data::read_panda_train_csv(o.truth);
  for (const std::string& w : truth.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const std::vector<data::SlideGrade> predictions = data::read_grades_csv(o.predictions);
  std::map<std::string, const data::SlideGrade*> by_id;
  for (const data::SlideGrade& p : predictions) by_id[p.image_id] = &p;

  std::map<std::string, const data::PandaRow*> truth_by_id;
  for (const data::PandaRow& row : truth.rows) truth_by_id[row.image_id] = &row;
  for (const data::SlideGrade& p : predictions)
    SG_CHECK(truth_by_id.count(p.image_id), o.predictions, ": line ", p.line, ": ", p.image_id, " is not in ", o.truth);

  grading::KappaReport report;
  size_t missing = 0;
  std::string first_missing;
  for (const data::PandaRow& row : truth.rows) {
    const auto it = by_id.find(row.image_id);
    if (it == by_id.end()) {
      if (missing++ == 0) first_missing = row.image_id;
      continue;
    }
    report.add(row.isup_grade, it->second->isup_grade, std::string(data::provider_name(row.provider)));
  }
  SG_CHECK(missing == 0 || o.partial, o.predictions, ": ", missing, " of the ", truth.rows.size(), " slides in ",
           o.truth, " have no prediction (first: ", first_missing, "); --partial scores only those predicted");
  SG_CHECK(report.overall.total() > 0, o.predictions, ": no slide in common with ", o.truth);

  std::printf("slides scored: %lld", static_cast<long long>(report.overall.total()));
  if (missing) std::printf(" (%zu in the truth without a prediction, left out)", missing);
  std::printf("\nQWK: %s\naccuracy: %.4f\n", grading::format_kappa(grading::quadratic_weighted_kappa(report.overall)).c_str(),
              report.overall.accuracy());
  for (const auto& [provider, matrix] : report.by_group)
    std::printf("QWK %s: %s (%lld slides, accuracy %.4f)\n", provider.c_str(),
                grading::format_kappa(grading::quadratic_weighted_kappa(matrix)).c_str(),
                static_cast<long long>(matrix.total()), matrix.accuracy());
  print_matrix(report.overall);
  return 0;
}
}  // namespace

void add_evaluate_command(CLI::App& app, Commands& commands) {
  auto options = std::make_shared<EvaluateOptions>();
  CLI::App* parser = app.add_subcommand(
      "evaluate", "Score predicted ISUP grades against the truth: quadratic weighted kappa (overall and per "
                  "data provider), accuracy, confusion matrix");
  parser->add_option("--truth", options->truth, "PANDA train.csv-style file with isup_grade and data_provider")
      ->required();
  parser->add_option("--pred", options->predictions, "Kaggle submission file: image_id,isup_grade")->required();
  parser->add_flag("--partial", options->partial, "score only the slides that have a prediction");
  commands.push_back({parser, [options] { return run_evaluate(*options); }});
}

}  // namespace sg::cli
