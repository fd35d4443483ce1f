// libFuzzer target: data/grades_csv.h read_grades_csv (a submission file).
#include "data/grades_csv.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "csv");
  return sg::fuzz::run_reader([&] {
    for (const auto& grade : sg::data::read_grades_csv(path)) {
      if (grade.isup_grade < 0 || grade.isup_grade > 5) __builtin_trap();  // the reader promises 0-5
    }
  });
}
