#pragma once
// Errors a user can cause (bad shapes, wrong dtypes, memory over the cap, a CUDA failure) are
// thrown as sg::Error with a message that names the op, the tensors and what was expected.
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sg {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What an out-of-memory error knows, for callers that want more than the message (tests, a
// caller that retries with a smaller batch). Sizes in bytes; 0 where not known.
struct OutOfMemoryInfo {
  std::string device;     // "cpu", "cuda:0"
  std::string scope;      // what was running (AllocationScope labels, outermost first); "" if none
  std::string what;       // the requester: "conv2d output", "cuBLAS workspace", ...
  size_t requested = 0;   // the allocator's rounded request
  size_t in_use = 0;      // bytes in live tensors at the time
  size_t reserved = 0;    // bytes the allocator held from the system (in use + cached)
  size_t limit = 0;       // the --memory-limit cap; 0: none
  size_t device_free = 0, device_total = 0;  // cudaMemGetInfo when the GPU itself refused
};

// Thrown when an allocation would exceed the device's memory cap or the device itself is full.
// The message names what was running, the request, the usage, the cap and what to change.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
  OutOfMemoryError(const std::string& message, OutOfMemoryInfo info) : Error(message), info_(std::move(info)) {}
  const OutOfMemoryInfo& info() const { return info_; }

 private:
  OutOfMemoryInfo info_;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace sg

// SG_CHECK(cond, parts...): throw sg::Error built from the parts when cond is false.
#define SG_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) throw ::sg::Error(::sg::detail::concat(__VA_ARGS__));   \
  } while (0)
