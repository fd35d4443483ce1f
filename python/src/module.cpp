// The _slidegrade extension module, over the same static libraries as the `slidegrade` command.
// python/slidegrade/__init__.py is the package users import; it re-exports these and adds
// train() and grade() on top of _train and _grade.
#include "python/src/bindings.h"

#ifndef SLIDEGRADE_VERSION
#error "SLIDEGRADE_VERSION is defined by python/CMakeLists.txt (the project version)"
#endif

NB_MODULE(_slidegrade, m) {
  namespace python = sg::python;
  m.doc() = "slidegrade's C++ engine (use the slidegrade package)";
  m.attr("__version__") = SLIDEGRADE_VERSION;
  python::bind_errors(m);
  python::bind_devices(m);
  python::bind_slide(m);
  python::bind_model(m);
  python::bind_train(m);
  python::bind_grade(m);
  python::bind_onnx_export(m);
}
