// The slidegrade command: thin subcommands over the library folders, one file each.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"slidegrade: grade prostate biopsy slides (ISUP 0-5) with EfficientNets"};
  app.require_subcommand(1);
  sg::cli::Commands commands;
  sg::cli::add_info_command(app, commands);
  sg::cli::add_summary_command(app, commands);
  sg::cli::add_bench_command(app, commands);
  sg::cli::add_plan_command(app, commands);
  sg::cli::add_forward_command(app, commands);
  sg::cli::add_import_command(app, commands);
  sg::cli::add_inspect_command(app, commands);
  sg::cli::add_evaluate_command(app, commands);
  sg::cli::add_tile_command(app, commands);
  sg::cli::add_synth_command(app, commands);
  sg::cli::add_train_command(app, commands);
  sg::cli::add_grade_command(app, commands);
  sg::cli::add_thresholds_command(app, commands);

  CLI11_PARSE(app, argc, argv);
  try {
    for (const sg::cli::Command& command : commands)
      if (command.parser->parsed()) return command.run();
  } catch (const sg::Error& e) {
    std::fprintf(stderr, "slidegrade: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slidegrade: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
