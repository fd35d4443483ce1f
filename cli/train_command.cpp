// slidegrade train: one fold (or every fold) of a PANDA-layout dataset (train/trainer.h); progress
// as plain lines, then each fold's best QWK, where the run's files are and where the time went.
//   slidegrade train --config C --data DIR [--fold K | --all-folds] [--out RUNDIR] [--resume RUNDIR]
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"
#include "train/quadratic_weighted_kappa.h"
#include "train/run_config.h"
#include "train/trainer.h"

namespace sg::cli {

namespace {

struct TrainCommandOptions {
  train::RunConfig config;
  std::string config_file;
  std::string resume;
};

// TEMP until run_config_cli lands: a flag per RunConfig field (the TOML file through CLI11's
// config reader); then train::add_run_config_options(*parser, o->config) replaces this.
void temp_add_run_config_options(CLI::App& app, train::RunConfig& c, std::string& config_file) {
  app.set_config("--config", "", "TOML file of run settings (every key is also a flag)");
  static_cast<void>(config_file);
  app.add_option("--data", c.data, "PANDA-layout folder: train.csv, train_images/");
  app.add_option("--out", c.out, "run folder")->capture_default_str();
  app.add_option("--folds", c.folds, "k of the stratified k-fold split")->capture_default_str();
  app.add_option("--fold", c.fold, "the validation fold")->capture_default_str();
  app.add_flag("--all_folds,--all-folds", c.all_folds, "train every fold in turn (RUNDIR/fold<k>/)");
  app.add_option("--fold_seed", c.fold_seed)->capture_default_str();
  app.add_option("--exclude_known_bad", c.exclude_known_bad)->capture_default_str();
  app.add_option("--train_fraction", c.train_fraction)->capture_default_str();
  app.add_option("--tiles", c.tiles)->capture_default_str();
  app.add_option("--tile_size", c.tile_size)->capture_default_str();
  app.add_option("--level", c.level)->capture_default_str();
  app.add_option("--half_offset", c.half_offset)->capture_default_str();
  app.add_option("--shuffle_tiles", c.shuffle_tiles)->capture_default_str();
  app.add_option("--mosaic_rows", c.mosaic_rows)->capture_default_str();
  app.add_option("--mosaic_cols", c.mosaic_cols)->capture_default_str();
  app.add_option("--tile_cache", c.tile_cache)->capture_default_str();
  app.add_option("--cache_dir", c.cache_dir);
  app.add_option("--arch", c.arch)->capture_default_str();
  app.add_option("--width", c.width)->capture_default_str();
  app.add_option("--depth", c.depth)->capture_default_str();
  app.add_option("--pretrained", c.pretrained);
  app.add_option("--head", c.head)->capture_default_str();
  app.add_option("--activation", c.activation);
  app.add_option("--pooling", c.pooling)->capture_default_str();
  app.add_option("--dropout", c.dropout)->capture_default_str();
  app.add_option("--drop_connect", c.drop_connect)->capture_default_str();
  app.add_option("--precision", c.precision)->capture_default_str();
  app.add_option("--checkpointing", c.checkpointing)->capture_default_str();
  app.add_option("--batch", c.batch)->capture_default_str();
  app.add_option("--accumulate", c.accumulate)->capture_default_str();
  app.add_option("--epochs", c.epochs)->capture_default_str();
  app.add_option("--optimizer", c.optimizer)->capture_default_str();
  app.add_option("--lr", c.lr)->capture_default_str();
  app.add_option("--weight_decay", c.weight_decay)->capture_default_str();
  app.add_option("--momentum", c.momentum)->capture_default_str();
  app.add_option("--schedule", c.schedule)->capture_default_str();
  app.add_option("--warmup_epochs", c.warmup_epochs)->capture_default_str();
  app.add_option("--min_lr", c.min_lr)->capture_default_str();
  app.add_option("--max_grad_norm", c.max_grad_norm)->capture_default_str();
  app.add_option("--label_smoothing", c.label_smoothing)->capture_default_str();
  app.add_option("--augment", c.augment)->capture_default_str();
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_option("--device", c.device)->capture_default_str();
  app.add_option("--memory_limit", c.memory_limit);
  app.add_option("--loader_threads", c.loader_threads)->capture_default_str();
  app.add_option("--queue_depth", c.queue_depth)->capture_default_str();
  app.add_option("--tta_validation", c.tta_validation)->capture_default_str();
  app.add_option("--log_every", c.log_every)->capture_default_str();
}

std::string qwk_text(const std::optional<double>& qwk) { return train::format_kappa(qwk); }

int run_train(TrainCommandOptions& o) {
  train::TrainOptions options;
  if (!o.resume.empty()) {
    options.resume = true;
    o.config.out = o.resume;
  }
  train::TrainerEvents events;
  events.message = [](const std::string& line) { std::printf("%s\n", line.c_str()); std::fflush(stdout); };
  const int log_every = o.config.log_every;
  events.step = [log_every](const train::StepEvent& e) {
    const bool last = e.batch == e.batches;
    if (!last && (log_every <= 0 || e.batch % log_every != 0)) return;
    std::printf("epoch %d/%d batch %lld/%lld loss %.4f lr %.3g %.1f images/s device memory %s (peak %s)\n", e.epoch + 1,
                e.epochs, static_cast<long long>(e.batch), static_cast<long long>(e.batches), e.loss, e.lr,
                e.seconds > 0 ? double(e.images) / e.seconds : 0.0, format_bytes(size_t(e.device_bytes_in_use)).c_str(),
                format_bytes(size_t(e.device_bytes_peak)).c_str());
    std::fflush(stdout);
  };
  events.epoch = [](const train::EpochEvent& e) {
    std::string providers;
    for (const auto& [provider, qwk] : e.val_qwk_by_provider) providers += " " + provider + " " + qwk_text(qwk);
    std::printf("epoch %d/%d: train loss %.4f, val loss %.4f, val QWK %s (%s), accuracy %.3f, %.1f s%s\n", e.epoch + 1,
                e.epochs, e.train_loss, e.val_loss, qwk_text(e.val_qwk).c_str(),
                providers.empty() ? "" : providers.substr(1).c_str(), e.val_accuracy, e.seconds,
                e.best ? " [best]" : "");
    std::fflush(stdout);
  };
  const std::vector<train::FoldResult> results = train::run_training(o.config, options, events);
  for (const train::FoldResult& r : results) {
    std::printf("fold %d: best validation QWK %s at epoch %d; run folder %s (best weights %s)\n", r.fold,
                qwk_text(r.best_qwk).c_str(), r.best_epoch + 1, r.run_dir.c_str(), r.best_weights.c_str());
    if (!r.skipped_slides.empty()) {
      std::printf("fold %d: %zu slide(s) skipped:\n", r.fold, r.skipped_slides.size());
      for (const std::string& s : r.skipped_slides) std::printf("  %s\n", s.c_str());
    }
    std::printf("%s\n", r.time_report.c_str());
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<TrainCommandOptions>();
  CLI::App* parser = app.add_subcommand("train", "Train an EfficientNet on a PANDA-layout dataset (one fold or all)");
  temp_add_run_config_options(*parser, o->config, o->config_file);  // TEMP until run_config_cli lands
  parser->add_option("--resume", o->resume, "continue RUNDIR from its last.h5 (the config must agree)");
  commands.push_back({parser, [o] { return run_train(*o); }});
}

}  // namespace sg::cli
