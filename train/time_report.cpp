#include "train/time_report.h"

#include <cmath>
#include <cstdio>
#include <utility>

namespace sg::train {
namespace {

std::string table_row(const char* part, double seconds, double total) {
  char line[96];
  if (total > 0)
    std::snprintf(line, sizeof line, "  %-16s %9.1f %6.1f%%\n", part, seconds, 100.0 * seconds / total);
  else
    std::snprintf(line, sizeof line, "  %-16s %9.1f %7s\n", part, seconds, "-");
  return line;
}

}  // namespace

std::string format_time_report(const std::vector<EpochTimes>& epochs, double device_wait_fraction) {
  std::string report;
  if (epochs.empty()) {
    report = "where the time went: no epoch was timed\n";
  } else {
    EpochTimes mean;
    for (const EpochTimes& e : epochs) {
      mean.load += e.load, mean.copy += e.copy, mean.forward += e.forward, mean.backward += e.backward;
      mean.optimizer += e.optimizer, mean.validation += e.validation, mean.total += e.total;
    }
    const double n = double(epochs.size());
    const std::pair<const char*, double> parts[] = {
        {"loading", mean.load / n},     {"copy to device", mean.copy / n},
        {"forward", mean.forward / n},  {"backward", mean.backward / n},
        {"optimizer", mean.optimizer / n}, {"validation", mean.validation / n}};
    const double total = mean.total / n;
    report = "where the time went (" + std::to_string(epochs.size()) +
             (epochs.size() == 1 ? " epoch" : " epochs") + ", mean per epoch):\n";
    report += "  part               s/epoch   share\n";
    double sum = 0;
    for (const auto& [part, seconds] : parts) {
      report += table_row(part, seconds, total);
      sum += seconds;
    }
    // Time in no part (logging, checkpoints, the scheduler); when the parts add up to more than
    // the epoch they ran concurrently, and the shares say so rather than inventing a negative.
    const double other = total - sum;
    if (other > 0.0005 * total) report += table_row("other", other, total);
    report += table_row("epoch", total, total);
    if (total > 0 && sum > total * 1.005) {
      char note[128];
      std::snprintf(note, sizeof note, "  (the parts overlap: they add up to %.1f%% of the epoch)\n",
                    100.0 * sum / total);
      report += note;
    }
  }
  if (device_wait_fraction >= 0 && std::isfinite(device_wait_fraction)) {
    char line[96];
    std::snprintf(line, sizeof line, "the device waited for data %.1f%% of the time\n",
                  100.0 * device_wait_fraction);
    report += line;
  }
  return report;
}

}  // namespace sg::train
