// slidegrade train: one fold (or every fold) of a PANDA-layout dataset (train/trainer.h); progress
// as plain lines, then each fold's best QWK, where the run's files are and where the time went.
//   slidegrade train --config C --data DIR [--fold K | --all-folds] [--out RUNDIR] [--resume RUNDIR]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"
#include "grading/quadratic_weighted_kappa.h"
#include "train/progress_display.h"
#include "train/run_config.h"
#include "train/run_config_cli.h"
#include "train/trainer.h"

namespace sg::cli {

namespace {

struct TrainCommandOptions {
  train::RunConfig config;
  std::string config_file;
  std::string resume;
};

// `--resume RUNDIR`: the run's saved config (RUNDIR/config.toml) under the flags given on this
// command line; with --config, the given config as it stands (the trainer then refuses any
// difference that changes what the run computes).
train::RunConfig resume_config(const CLI::App& parser, const TrainCommandOptions& o) {
  if (!o.config_file.empty()) return o.config;
  std::vector<std::string> arguments;
  for (const CLI::Option* option : parser.get_options()) {
    const std::string name = option->get_name();
    if (option->count() == 0 || name == "--resume" || name == "--config" || name == "--help") continue;
    for (const std::string& value : option->results()) arguments.push_back(name + "=" + value);
  }
  return train::resume_run_config(o.resume, arguments);
}

std::string qwk_text(const std::optional<double>& qwk) { return grading::format_kappa(qwk); }

int run_train(const CLI::App& parser, TrainCommandOptions& o) {
  train::TrainOptions options;
  if (!o.resume.empty()) {
    options.resume = true;
    o.config = resume_config(parser, o);
    o.config.out = o.resume;
  }
  // A bar redrawn in place on a terminal, plain lines elsewhere (train/progress_display.h); with
  // log_every, also one plain line every log_every batches.
  train::ProgressDisplay display(stdout);
  train::TrainerEvents events = display.events();
  if (const int log_every = o.config.log_every; log_every > 0)
    events.step = [&display, log_every](const train::StepEvent& e) {
      display.step(e);
      if (e.batch % log_every == 0) display.message(train::format_plain_progress_line(e));
    };
  const std::vector<train::FoldResult> results = train::run_training(o.config, options, events);
  display.end_line();
  for (const train::FoldResult& r : results) {
    std::printf("fold %d: best validation QWK %s at epoch %d; run folder %s (best weights %s)\n", r.fold,
                qwk_text(r.best_qwk).c_str(), r.best_epoch + 1, r.run_dir.c_str(), r.best_weights.c_str());
    if (!r.skipped_slides.empty()) {
      std::printf("fold %d: %zu slide(s) skipped:\n", r.fold, r.skipped_slides.size());
      for (const std::string& s : r.skipped_slides) std::printf("  %s\n", s.c_str());
    }
    std::printf("fold %d: pictures %s/curves.svg, %s/confusion.svg (and .png)\n", r.fold, r.run_dir.c_str(),
                r.run_dir.c_str());
    std::printf("fold %d: %s\n", r.fold, r.time_report.c_str());
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<TrainCommandOptions>();
  CLI::App* parser = app.add_subcommand("train", "Train an EfficientNet on a PANDA-layout dataset (one fold or all)");
  train::add_run_config_options(*parser, o->config);
  parser
      ->add_option("--resume", o->resume,
                   "continue RUNDIR from its last.h5 with RUNDIR/config.toml (flags given here override it; a "
                   "difference that changes what the run computes is refused)")
      ->type_name("RUNDIR");
  commands.push_back({parser, [o, parser] {
                        if (const CLI::Option* config = parser->get_option_no_throw("--config");
                            config && config->count())
                          o->config_file = config->results().front();
                        return run_train(*parser, *o);
                      }});
}

}  // namespace sg::cli
