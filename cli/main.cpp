// The slidegrade command: thin subcommands over the library folders, one file each.
//
// Exit status, one convention for every subcommand (also in `slidegrade --help` and README.md):
//   0  success
//   1  a failure while running: unreadable or bad data, an I/O error, out of memory, ...
//   2  a usage or configuration error, found before anything runs: an unknown flag, a bad value or
//      word, a missing or invalid --config file, an unknown key (every CLI11 parse error, and
//      sg::UsageError from the checks after parsing)
//   3  `plan` only: the training step does not fit the memory budget (an answer, not an error)
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "core/error.h"
#include "core/usage_error.h"

namespace {
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slidegrade: grade prostate biopsy slides (ISUP 0-5) with EfficientNets"};
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success; 1 a failure while running (unreadable or bad data, I/O error, out of memory); "
      "2 a usage or configuration error (unknown flag, bad value or word, missing or invalid --config file, "
      "unknown key); `plan` exits with 3 when the step does not fit the budget.");
  sg::cli::Commands commands;
  sg::cli::add_info_command(app, commands);
  sg::cli::add_summary_command(app, commands);
  sg::cli::add_bench_command(app, commands);
  sg::cli::add_plan_command(app, commands);
  sg::cli::add_forward_command(app, commands);
  sg::cli::add_export_command(app, commands);
  sg::cli::add_import_command(app, commands);
  sg::cli::add_inspect_command(app, commands);
  sg::cli::add_evaluate_command(app, commands);
  sg::cli::add_tile_command(app, commands);
  sg::cli::add_synth_command(app, commands);
  sg::cli::add_train_command(app, commands);
  sg::cli::add_grade_command(app, commands);
  sg::cli::add_merge_grades_command(app, commands);
  sg::cli::add_thresholds_command(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints the help (--help is a "parse error" with status 0 to CLI11) or the message;
    // CLI11's own non-zero codes (105, 110, ...) all become the one usage status.
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  try {
    for (const sg::cli::Command& command : commands)
      if (command.parser->parsed()) return command.run();
  } catch (const sg::UsageError& e) {
    std::fprintf(stderr, "slidegrade: error: %s\n", e.what());
    return kExitUsage;
  } catch (const sg::Error& e) {
    std::fprintf(stderr, "slidegrade: error: %s\n", e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slidegrade: internal error: %s\n", e.what());
    return kExitFailure;
  }
  return 0;
}
