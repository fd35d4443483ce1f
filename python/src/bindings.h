#pragma once
// The _slidegrade extension module: one file per part of the API, each adding its functions and
// classes to the module (module.cpp calls them in order).
#include <nanobind/nanobind.h>

namespace sg::python {

namespace nb = nanobind;

void bind_errors(nb::module_& m);       // errors.cpp: slidegrade.Error and its subclasses
void bind_devices(nb::module_& m);      // devices.cpp: devices()
void bind_slide(nb::module_& m);        // slide.cpp: Slide, tile(), synth()
void bind_model(nb::module_& m);        // model.cpp: Model
void bind_train(nb::module_& m);        // train.cpp: the trainer behind train()
void bind_grade(nb::module_& m);        // grade.cpp: grade(), evaluate(), qwk()
void bind_onnx_export(nb::module_& m);  // onnx_export.cpp: export_onnx()

}  // namespace sg::python
