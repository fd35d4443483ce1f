#pragma once
// One slidegrade subcommand: its CLI11 parser and what runs when it was chosen. Each subcommand
// lives in its own cli/<name>_command.cpp and registers itself from main.cpp.
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace sg::cli {

struct Command {
  CLI::App* parser = nullptr;
  std::function<int()> run;  // returns the exit status; throws sg::Error for user errors
};

using Commands = std::vector<Command>;

void add_info_command(CLI::App& app, Commands& commands);
void add_summary_command(CLI::App& app, Commands& commands);
void add_bench_command(CLI::App& app, Commands& commands);
void add_plan_command(CLI::App& app, Commands& commands);
void add_forward_command(CLI::App& app, Commands& commands);
void add_export_command(CLI::App& app, Commands& commands);
void add_import_command(CLI::App& app, Commands& commands);
void add_inspect_command(CLI::App& app, Commands& commands);
void add_evaluate_command(CLI::App& app, Commands& commands);
void add_tile_command(CLI::App& app, Commands& commands);
void add_synth_command(CLI::App& app, Commands& commands);
void add_train_command(CLI::App& app, Commands& commands);
void add_grade_command(CLI::App& app, Commands& commands);
void add_merge_grades_command(CLI::App& app, Commands& commands);
void add_thresholds_command(CLI::App& app, Commands& commands);

}  // namespace sg::cli
