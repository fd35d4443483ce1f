#pragma once
// Training checkpoints: a weight file (weights/weight_file.h) plus what resuming needs: the
// optimizer's per-parameter state, the scheduler, the loss scale, the RNG and the data position.
// Plain structs and maps, so this does not depend on train/ (train/ fills and reads them).
//
// On-disk layout, beyond the weight file's / attributes and /model (format_version 1):
//   /optimizer                       attributes: kind (string, e.g. "adamw"), and one f64 attribute
//                                    per entry of OptimizerState::scalars (hyperparameters, counters)
//   /optimizer/<param name>/<slot>   one dataset per state tensor, e.g.
//                                    /optimizer/blocks.3.1.dw.weight/exp_avg (dtype kept, as in /model)
//   /scheduler                       attributes: kind (string), one f64 attribute per scalar
//   /training                        attributes: step, epoch, data_position (int64), loss_scale (f64),
//                                    rng_seed, rng_offset (uint64); each TrainingProgress::counters
//                                    entry as an int64 attribute and each ::values entry as f64
//                                    (their names must not clash with the fixed ones)
//   /training/<name>                 one dataset per TrainingProgress::tensors entry (e.g. the
//                                    epoch's sample order as i32)
// Written atomically like weight files, with the same 512-byte checksum header before the HDF5
// data (weights/checksummed_hdf5.h): a checkpoint with any damaged or missing byte is refused on
// loading, naming the file, so a resume never starts from silently different tensors.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "weights/weight_file.h"

namespace sg {

struct OptimizerState {
  std::string kind;                       // "sgd", "adamw", ...
  std::map<std::string, double> scalars;  // e.g. lr, beta1, weight_decay, step
  // parameter name -> slot name ("exp_avg", "exp_avg_sq", "momentum") -> tensor (any device)
  std::map<std::string, std::map<std::string, Tensor>> slots;
};

struct SchedulerState {
  std::string kind;                       // "cosine", "step", ...
  std::map<std::string, double> scalars;  // e.g. base_lr, warmup_steps, last_step
};

struct TrainingProgress {
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t data_position = 0;  // samples consumed in the current epoch
  double loss_scale = 1.0;
  uint64_t rng_seed = 0;
  uint64_t rng_offset = 0;
  std::map<std::string, int64_t> counters;  // e.g. steps since the last loss-scale overflow
  std::map<std::string, double> values;     // e.g. best validation loss
  std::map<std::string, Tensor> tensors;    // e.g. the epoch's sample order
};

struct TrainingCheckpoint {
  OptimizerState optimizer;
  SchedulerState scheduler;
  TrainingProgress progress;
};

// Writes the model tensors, attributes and training state to `path` atomically. Every optimizer
// slot must belong to a model tensor (by name).
void save_checkpoint(const std::string& path, const std::vector<NamedTensor>& model,
                     const WeightAttributes& attributes, const TrainingCheckpoint& checkpoint);

// Loads the model strictly (every name, shape and dtype must match; see load_weights; options
// other than `partial` apply) and returns the training state; its tensors are new CPU tensors
// with the stored dtype. Throws naming the file when it is not a checkpoint (a plain weight
// file) or when an optimizer slot names a tensor the model does not have.
TrainingCheckpoint load_checkpoint(const std::string& path, const std::vector<NamedTensor>& model,
                                   const LoadOptions& options = {});

}  // namespace sg
