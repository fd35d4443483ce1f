// slidegrade.Error, ArgumentError and OutOfMemoryError, and the translator from the C++ errors.
// ArgumentError has two bases (Error and ValueError), which nb::exception cannot make, so the
// classes are made with PyErr_NewException and kept for the life of the interpreter.
#include "python/src/errors.h"

#include <CLI/CLI.hpp>

#include "python/src/bindings.h"

namespace sg::python {

namespace {
PyObject* g_error = nullptr;
PyObject* g_argument_error = nullptr;
PyObject* g_out_of_memory_error = nullptr;

PyObject* new_exception(nb::module_& m, const char* name, PyObject* bases, const char* doc) {
  const std::string qualified = std::string("slidegrade.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (!type) throw nb::python_error();
  m.attr(name) = nb::borrow(type);  // the module holds a reference; g_* keep theirs for good
  return type;
}
}  // namespace

void bind_errors(nb::module_& m) {
  g_error = new_exception(m, "Error", PyExc_RuntimeError,
                          "A slidegrade failure while running: an unreadable or bad slide, data or weight file, an "
                          "I/O error (the CLI's exit status 1). The message is the CLI's.");
  const nb::object argument_bases = nb::make_tuple(nb::handle(g_error), nb::handle(PyExc_ValueError));
  g_argument_error = new_exception(m, "ArgumentError", argument_bases.ptr(),
                                   "A bad argument, found before anything runs: an unknown option word, key or value, "
                                   "a wrongly shaped or typed array (the CLI's exit status 2).");
  const nb::object memory_bases = nb::make_tuple(nb::handle(g_error), nb::handle(PyExc_MemoryError));
  g_out_of_memory_error = new_exception(m, "OutOfMemoryError", memory_bases.ptr(),
                                        "A device allocation over the memory limit, or a full device; the message "
                                        "names what was running and what to change.");
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const UsageError& e) {
      PyErr_SetString(g_argument_error, e.what());
    } catch (const CLI::ParseError& e) {
      PyErr_SetString(g_argument_error, e.what());
    } catch (const OutOfMemoryError& e) {
      PyErr_SetString(g_out_of_memory_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });
}

}  // namespace sg::python
