// libFuzzer target: data/csv.h parse_csv on arbitrary text (from memory), then the table checks.
#include <string_view>

#include "data/csv.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sg::fuzz::run_reader([&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto records = sg::data::parse_csv(text, "fuzz.csv");
    // Every record has a field and a line at or after the previous one.
    int previous_line = 0;
    for (const auto& record : records) {
      if (record.fields.empty() || record.line < previous_line || record.line < 1) __builtin_trap();
      previous_line = record.line;
    }
  });
}
