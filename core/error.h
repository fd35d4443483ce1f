#pragma once
// Errors a user can cause (bad shapes, wrong dtypes, memory over the cap, a CUDA failure) are
// thrown as sg::Error with a message that names the op, the tensors and what was expected.
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>

namespace sg {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when an allocation would exceed the device's memory cap or the device itself is full.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
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
