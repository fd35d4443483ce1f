#pragma once
// Errors of the slide pipeline that callers treat differently from other sg::Errors.
#include "core/error.h"

namespace sg::data {

// A sample function throws this for an item that cannot be used (a truncated slide, a file that
// is not a slide, a slide without enough tissue): the AsyncLoader reports the item, counts it and
// fills the batch with the next good items instead of failing the epoch. Any other exception from
// a sample function stops the epoch and surfaces in the consumer.
class SkippableItemError : public Error {
 public:
  using Error::Error;
};

}  // namespace sg::data
