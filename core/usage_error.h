#pragma once
// A bad command line or configuration: a value out of range, an unknown word, options that
// contradict each other or the run folder they name. `slidegrade` exits with status 2 for it (as
// for every error its command-line parser reports) and with 1 for the other sg::Errors, which
// arise while running (cli/main.cpp).
#include "core/error.h"

namespace sg {

class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace sg
