#pragma once
// Everything `slidegrade train` needs, one field per config key. A run reads a TOML file
// (--config C) and every key is also a flag (--key value) that overrides the file; the resolved
// config is written to RUNDIR/config.toml, and `--resume RUNDIR` reads it back.
// Key names are the field names with '_' (e.g. tile_size, loader_threads).
#include <cstdint>
#include <string>

namespace sg::train {

struct RunConfig {
  // ---- data
  std::string data;           // PANDA-layout folder: train.csv, train_images/ (required)
  std::string out = "runs/run";  // run folder (RUNDIR)
  int folds = 5;              // k of the stratified k-fold split (data/kfold.h), saved in RUNDIR/../ or data
  int fold = 0;               // the validation fold, 0..folds-1
  bool all_folds = false;     // train every fold in turn: RUNDIR/fold<k>/
  uint64_t fold_seed = 42;
  bool exclude_known_bad = true;  // drop PANDA's known-bad rows (data/panda_dataset.h)
  double train_fraction = 1.0;    // use this share of the training fold (quick runs), stratified
  // ---- tiles (data/tile_set.h, data/slide_mosaics.h)
  int tiles = 36;             // N
  int tile_size = 256;        // S
  int level = 1;              // L
  bool half_offset = false;
  bool shuffle_tiles = true;  // random tile order within the training mosaic
  int mosaic_rows = 0, mosaic_cols = 0;  // 0: square
  bool tile_cache = true;     // cache each slide's tiles on disk (RUNDIR/../tile_cache or cache_dir)
  std::string cache_dir;      // default: <data>/.slidegrade_tile_cache
  // ---- model
  std::string arch = "b0";    // b0..b7, lite0..lite4
  double width = 0, depth = 0;  // > 0: override the arch's width/depth multipliers (small demo nets)
  std::string pretrained;     // weight file (ours, or imported Keras/PyTorch) for the backbone
  std::string head = "binned";  // a word of grading::kHeadKindWords (grading/head.h)
  std::string activation;     // empty: the arch's (swish; relu6 for lite); or a word of kActivationWords
  std::string pooling = "avg";  // a word of nn::kHeadPoolingWords (nn/head.h)
  double dropout = -1;        // head dropout; < 0: the arch's
  double drop_connect = -1;   // < 0: the arch's
  std::string precision = "f32";  // a word of nn::kPrecisionWords (nn/precision.h)
  std::string checkpointing = "none";  // none | every | every:K | blocks:I,J | auto
  // ---- optimisation
  int batch = 4;
  int accumulate = 1;         // micro-batches per optimizer step
  int epochs = 10;
  std::string optimizer = "adamw";  // a word of nn::kOptimizerWords (nn/optimizer_kind.h)
  double lr = 3e-4;
  double weight_decay = 1e-2;
  double momentum = 0.9;      // sgd
  std::string schedule = "cosine";  // a word of kLrScheduleWords (train/lr_schedule.h)
  double warmup_epochs = 1.0;
  double min_lr = 1e-6;
  double max_grad_norm = 0;   // > 0: clip
  double label_smoothing = 0;  // softmax head only
  // ---- augmentation (data/augment.h)
  std::string augment = "default";  // a word of kAugmentPresetWords (train/augment_preset.h)
  // ---- run
  uint64_t seed = 0;
  std::string device = "auto";      // auto | cpu | cuda | cuda:N
  std::string memory_limit;         // e.g. 4GiB: cap the device allocator
  int loader_threads = 2;
  int queue_depth = 2;              // batches the loader may run ahead
  bool tta_validation = false;      // validate with dihedral TTA (slower)
  int log_every = 0;                // > 0: also print a plain line every this many steps
};

}  // namespace sg::train
