// slidegrade evaluate --truth train.csv --pred submission.csv: PANDA's metric (quadratic weighted
// kappa) overall and per data provider, accuracy and the confusion matrix.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "grading/grade_evaluation.h"
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
  const grading::GradeEvaluation evaluation = grading::evaluate_grades(o.truth, o.predictions, o.partial);
  for (const std::string& w : evaluation.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  const grading::KappaReport& report = evaluation.report;
  const size_t missing = evaluation.missing;
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
