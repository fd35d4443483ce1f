// libFuzzer target: infer/thresholds.h read_oof_predictions (RUNDIR/oof_predictions.csv).
#include <cmath>

#include "fuzz/fuzz_support.h"
#include "infer/thresholds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "csv");
  return sg::fuzz::run_reader([&] {
    for (const auto& row : sg::infer::read_oof_predictions(path)) {
      // The header's promises: grades 0..5 and finite scores.
      if (row.isup_grade < 0 || row.isup_grade > 5 || !std::isfinite(row.score)) __builtin_trap();
    }
  });
}
