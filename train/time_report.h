#pragma once
// Where an epoch's time went, as the trainer prints it at the end of training (issue 6, item 7).
// The trainer measures (wall seconds per part per epoch); this file only formats.
#include <string>
#include <vector>

namespace sg::train {

// Seconds one epoch spent in each part. `load` is the time the training loop waited for the
// loader (not the loader threads' own time), `copy` host-to-device copies, `forward`,
// `backward`, `optimizer` the training step's parts, `validation` the whole validation pass;
// `total` the epoch's wall time (parts may overlap when a stream runs them concurrently; time
// in none of them is shown as "other").
struct EpochTimes {
  double load = 0, copy = 0, forward = 0, backward = 0, optimizer = 0, validation = 0, total = 0;
};

// A short table: mean seconds per epoch per part and its share of the mean epoch, then
// "the device waited for data X% of the time". device_wait_fraction is in [0, 1]; a negative
// value (or NaN) means "not measured" and leaves that line out. Example:
//
//   where the time went (2 epochs, mean per epoch):
//     part               s/epoch   share
//     loading               12.3   41.0%
//     copy to device         0.5    1.7%
//     forward                6.1   20.3%
//     backward               8.0   26.7%
//     optimizer              1.1    3.7%
//     validation             1.5    5.0%
//     other                  0.5    1.7%
//     epoch                 30.0  100.0%
//   the device waited for data 41.0% of the time
std::string format_time_report(const std::vector<EpochTimes>& epochs, double device_wait_fraction);

}  // namespace sg::train
