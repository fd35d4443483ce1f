#pragma once
// The ONNX export's Python arguments (slidegrade.export_onnx and Model.export_onnx), read with the
// command's grammar (infer/onnx_export.h): a bad word or number is an ArgumentError with the
// command's message.
#include <nanobind/nanobind.h>

#include <cstdint>
#include <string>

#include "infer/onnx_export.h"

namespace sg::python {

namespace nb = nanobind;

// layout 'nhwc' | 'nchw'; batch None (dynamic) or a positive int; opset 13..17; precision 'f32' | 'f16'.
infer::OnnxExportOptions onnx_export_options(const std::string& layout, const nb::object& batch, int64_t opset,
                                             const std::string& precision);

// {'arch', 'outputs', 'model_card', 'nodes', 'initializers', 'bytes', 'path'}.
nb::dict onnx_export_report(const infer::OnnxExportReport& report, const std::string& path);

}  // namespace sg::python
