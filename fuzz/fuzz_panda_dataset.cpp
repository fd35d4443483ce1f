// libFuzzer target: data/panda_dataset.h read_panda_train_csv and read_panda_test_csv on one file.
#include "data/panda_dataset.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "csv");
  sg::fuzz::run_reader([&] { sg::data::read_panda_train_csv(path, {.exclude_known_bad = true}); });
  sg::fuzz::run_reader([&] { sg::data::read_panda_test_csv(path); });
  return 0;
}
