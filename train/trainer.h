#pragma once
// `slidegrade train`: one fold (or every fold) of a PANDA-layout dataset, end to end.
//
// Run folder (RunConfig::out; with all_folds, RUNDIR/fold<k>/ per fold):
//   config.toml            the resolved config (train/run_config_cli.h)
//   folds.csv              the split used (image_id,fold), shared by every fold's run
//   metrics.csv            one row per epoch: epoch,step,lr,train_loss,val_loss,val_qwk,
//                          val_qwk_karolinska,val_qwk_radboud,val_accuracy,epoch_seconds,
//                          images_per_second,load_seconds,copy_seconds,forward_seconds,
//                          backward_seconds,optimizer_seconds,validation_seconds,device_wait_fraction,
//                          skipped_steps (f16 steps skipped for overflow),loss_scale (at the epoch's end)
//   confusion.csv          the best epoch's validation confusion matrix (rows truth 0-5, columns prediction)
//   oof_predictions.csv    the best epoch's validation predictions:
//                          image_id,data_provider,isup_grade,fold,score,prediction
//   best.h5                weights of the best epoch by validation QWK, with the model card
//                          (grading/model_card.h): what `slidegrade grade` loads
//   last.h5                the training checkpoint after the latest completed epoch (model,
//                          optimizer, scheduler, loss scale, RNG, epoch): what --resume loads
//   curves.svg, confusion.svg  pictures (train/plots.h)
// Every file is written atomically (core/atomic_file.h).
//
// Resume: `run_training(config, {.resume = true})` continues from last.h5; the result equals an
// uninterrupted run with the same config on the same device (same batches, augmentation seeds,
// dropout masks and optimizer state).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grading/quadratic_weighted_kappa.h"
#include "train/run_config.h"

namespace sg::train {

// What the trainer tells its caller as it goes (the CLI draws a progress bar from these).
struct StepEvent {
  int epoch = 0, epochs = 0;
  int64_t batch = 0, batches = 0;  // within the epoch (training batches)
  int64_t images = 0;              // images trained so far in this epoch
  double seconds = 0;              // since the epoch started
  float loss = 0, lr = 0;
  int64_t device_bytes_in_use = 0, device_bytes_peak = 0;
};
struct EpochEvent {
  int epoch = 0, epochs = 0;
  double train_loss = 0, val_loss = 0;
  std::optional<double> val_qwk;
  std::map<std::string, std::optional<double>> val_qwk_by_provider;
  double val_accuracy = 0;
  grading::ConfusionMatrix confusion;
  bool best = false;  // the best validation QWK so far: best.h5 was written
  double seconds = 0;
};
struct TrainerEvents {
  std::function<void(const std::string&)> message;  // one line of information
  std::function<void(const StepEvent&)> step;
  std::function<void(const EpochEvent&)> epoch;
};

struct TrainOptions {
  bool resume = false;  // continue RunConfig::out from its last.h5 (config must agree)
};

struct FoldResult {
  int fold = 0;
  std::string run_dir;
  std::optional<double> best_qwk;
  int best_epoch = -1;
  std::string best_weights;  // RUNDIR/best.h5
  std::vector<std::string> skipped_slides;  // "path: reason", every epoch's skips, deduplicated
  std::string time_report;   // where the time went, one paragraph (train/time_report)
};

// Throws sg::Error for user errors (bad data folder, empty fold, a run folder of another config
// on resume, a full disk while writing a checkpoint: the previous checkpoint stays intact).
std::vector<FoldResult> run_training(const RunConfig& config, const TrainOptions& options = {},
                                     const TrainerEvents& events = {});

}  // namespace sg::train
