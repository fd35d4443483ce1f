#pragma once
// Shared by the libFuzzer targets: the readers take a path, so each input is written to one
// temporary file per process (reused, so a run does not fill /tmp), and an sg::Error (the
// readers' documented way to refuse a file) is the expected outcome. Anything else escapes
// LLVMFuzzerTestOneInput: another exception type aborts, and libFuzzer records the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace sg::fuzz {

// /tmp/sg_fuzz_<pid>.<extension>, rewritten with `data` on each call.
inline const std::string& write_input(const uint8_t* data, size_t size, const char* extension) {
  static const std::string path =
      "/tmp/sg_fuzz_" + std::to_string(static_cast<long>(::getpid())) + "." + extension;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();  // not the reader's fault: stop the run loudly
  if (size > 0 && std::fwrite(data, 1, size, file) != size) std::abort();
  if (std::fclose(file) != 0) std::abort();
  return path;
}

// Runs `read`, accepting an sg::Error as a refusal.
template <typename Read>
int run_reader(Read&& read) {
  try {
    read();
  } catch (const sg::Error&) {
  }
  return 0;
}

}  // namespace sg::fuzz
