// libFuzzer target: data/npy.h read_npy. A header that claims a huge shape must be refused
// (sg::Error), not allocated: ASan's allocator reports a too-large allocation as a finding.
#include "data/npy.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "npy");
  return sg::fuzz::run_reader([&] { sg::read_npy(path); });
}
