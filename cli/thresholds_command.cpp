// slidegrade thresholds RUNDIR [RUNDIR ...]: tune the score -> grade cut points on the runs' pooled
// out-of-fold predictions (infer/thresholds.h) and store them in each run's best.h5.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "infer/thresholds.h"

namespace sg::cli {

namespace {
struct ThresholdsOptions {
  std::vector<std::string> runs;
  double step = 0.01;
  bool dry_run = false;
};

void print_report(const char* what, const grading::KappaReport& report) {
  std::printf("  %-22s QWK %s", what, grading::format_kappa(grading::quadratic_weighted_kappa(report.overall)).c_str());
  for (const auto& [provider, matrix] : report.by_group)
    std::printf("   %s %s", provider.c_str(), grading::format_kappa(grading::quadratic_weighted_kappa(matrix)).c_str());
  std::printf("\n");
}

int run_thresholds(const ThresholdsOptions& o) {
  infer::TuneOptions tune;
  tune.step = o.step;
  const infer::ThresholdTuning result = infer::tune_run_thresholds(o.runs, !o.dry_run, tune);
  std::printf("%zu out-of-fold predictions from %zu run(s):\n", result.rows.size(), result.runs.size());
  for (const std::string& run : result.runs) std::printf("  %s\n", run.c_str());
  std::printf("thresholds: default %s, tuned %s\n", grading::thresholds_text(tune.start).c_str(),
              grading::thresholds_text(result.tuned).c_str());
  print_report("as predicted:", result.as_predicted);
  print_report("default thresholds:", result.with_default);
  print_report("tuned thresholds:", result.with_tuned);
  if (o.dry_run) std::printf("dry run: no file written\n");
  for (const std::string& path : result.updated) std::printf("stored in %s\n", path.c_str());
  return 0;
}
}  // namespace

void add_thresholds_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<ThresholdsOptions>();
  CLI::App* parser =
      app.add_subcommand("thresholds",
                         "Tune the score-to-grade thresholds for QWK on the runs' pooled out-of-fold predictions and "
                         "store them in each run's best.h5");
  parser->add_option("runs", o->runs, "run folders of `slidegrade train` (oof_predictions.csv, best.h5)")
      ->required()
      ->expected(1, -1);
  parser->add_option("--step", o->step, "grid step of the search")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_flag("--dry-run", o->dry_run, "report only; write nothing");
  commands.push_back({parser, [o] { return run_thresholds(*o); }});
}

}  // namespace sg::cli
