#pragma once
// What a trained slidegrade model file says about how to feed it and how to read its outputs,
// stored as user attributes of the weight file (weights/weight_file.h) beside arch_config, so a
// file alone is enough for `slidegrade grade`:
//   head=binned  tiles=36  tile_size=256  tile_level=1  half_offset=0  mosaic_rows=6  mosaic_cols=6
//   invert=1  thresholds=0.5,1.5,2.5,3.5,4.5  thresholds_tuned=0  fold=0  epoch=7  validation_qwk=0.83
// Input: the uint8 RGB mosaic, inverted (255 - x) when invert=1, scaled to [0, 1], then
// (x - mean) / std with the arch_config's mean and std.
#include <limits>
#include <string>

#include "data/tile_set.h"
#include "grading/head.h"
#include "weights/weight_file.h"

namespace sg::grading {

struct ModelCard {
  HeadKind head = HeadKind::binned;
  data::TileSpec tiles;
  int mosaic_rows = 0, mosaic_cols = 0;  // as trained (0: square)
  bool invert = true;
  Thresholds thresholds = kDefaultThresholds;
  bool thresholds_tuned = false;  // set by `slidegrade thresholds` from out-of-fold predictions
  int fold = -1;                  // the validation fold it was trained without; -1: all data
  int epoch = -1;
  double validation_qwk = std::numeric_limits<double>::quiet_NaN();
};

void write_model_card(const ModelCard& card, WeightAttributes& attributes);
// Throws sg::Error naming `path` and the missing or bad attribute (a plain ImageNet weight file
// has no card: "not a trained slidegrade model").
ModelCard read_model_card(const WeightAttributes& attributes, const std::string& path);

}  // namespace sg::grading
