#pragma once
// C++ errors as Python exceptions, with the CLI's messages:
//   sg::UsageError, CLI11 parse errors  -> slidegrade.ArgumentError (Error and ValueError): the
//                                          CLI's exit status 2, a bad argument found before running
//   sg::OutOfMemoryError                -> slidegrade.OutOfMemoryError (Error and MemoryError)
//   sg::Error                           -> slidegrade.Error (a RuntimeError): the CLI's exit status 1
// The translator is registered in errors.cpp; code here only throws the C++ types.
#include <string>
#include <utility>

#include "core/error.h"
#include "core/usage_error.h"

namespace sg::python {

// Runs `f`, whose sg::Error can only mean a bad argument (an option word, a device spelling), and
// rethrows that as sg::UsageError with the same message.
template <class F>
auto as_argument_error(F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const UsageError&) {
    throw;
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

}  // namespace sg::python
