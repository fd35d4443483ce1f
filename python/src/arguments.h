#pragma once
// Arguments that Python passes as words, read with the CLI's own grammar so that a bad one gets the
// CLI's message (listing what is allowed) as slidegrade.ArgumentError.
#include <cstddef>
#include <string>

#include "core/allocator.h"
#include "core/device.h"
#include "python/src/errors.h"

namespace sg::python {

// "auto", "cpu", "cuda", "cuda:N": a bad spelling is an ArgumentError; a CUDA device that this
// machine does not have is an Error (as `slidegrade --device cuda` on a machine without a GPU).
inline Device device_argument(const std::string& text) {
  as_argument_error([&] { return parse_device_spelling(text); });
  return parse_device(text);
}

// "4GiB", "512MiB", "1.5GB", "1000000" (the --memory-limit grammar) into bytes; "" is 0 (no cap).
inline size_t memory_limit_argument(const std::string& text) {
  return text.empty() ? 0 : as_argument_error([&] { return parse_bytes(text); });
}

}  // namespace sg::python
