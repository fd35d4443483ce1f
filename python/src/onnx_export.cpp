// slidegrade.export_onnx: a weight file -> an ONNX model, as `slidegrade export --format onnx`
// (infer/onnx_export.h). Model.export_onnx (model.cpp) takes the same options.
#include "python/src/onnx_export.h"

#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/string.h>

#include <filesystem>

#include "core/usage_error.h"
#include "python/src/bindings.h"
#include "python/src/errors.h"

namespace sg::python {

infer::OnnxExportOptions onnx_export_options(const std::string& layout, const nb::object& batch, int64_t opset,
                                             const std::string& precision) {
  infer::OnnxExportOptions options;
  options.layout = as_argument_error([&] { return parse_word(infer::kOnnxLayoutWords, layout); });
  options.precision = as_argument_error([&] { return parse_word(infer::kOnnxPrecisionWords, precision); });
  if (!batch.is_none()) {
    if (!nb::isinstance<nb::int_>(batch) || nb::isinstance<nb::bool_>(batch))
      throw UsageError(detail::concat("export_onnx: batch must be None (dynamic) or a positive int, got ",
                                      nb::inst_name(batch).c_str()));
    options.batch = nb::cast<int64_t>(batch);
    if (options.batch < 1)
      throw UsageError(detail::concat("export_onnx: batch ", options.batch,
                                      ": expected None (dynamic) or a positive "
                                      "image count"));
  }
  if (opset < nn::kOnnxOldestOpset || opset > nn::kOnnxNewestOpset)
    throw UsageError(detail::concat("export_onnx: opset ", opset, " is not supported (", nn::kOnnxOldestOpset, " to ",
                                    nn::kOnnxNewestOpset, ")"));
  options.opset = opset;
  return options;
}

nb::dict onnx_export_report(const infer::OnnxExportReport& report, const std::string& path) {
  nb::dict d;
  d["path"] = path;
  d["arch"] = report.arch;
  d["outputs"] = report.outputs;
  d["model_card"] = report.model_card;
  d["nodes"] = report.nodes;
  d["initializers"] = report.initializers;
  d["bytes"] = report.bytes;
  return d;
}

void bind_onnx_export(nb::module_& m) {
  m.def(
      "export_onnx",
      [](const std::filesystem::path& weights, const std::filesystem::path& out, const std::string& layout,
         const nb::object& batch, int64_t opset, const std::string& precision) {
        const infer::OnnxExportOptions options = onnx_export_options(layout, batch, opset, precision);
        infer::OnnxExportReport report;
        {
          nb::gil_scoped_release release;
          report = infer::export_onnx(weights.string(), out.string(), options);
        }
        return onnx_export_report(report, out.string());
      },
      nb::arg("weights"), nb::arg("out"), nb::arg("layout") = "nhwc", nb::arg("batch") = nb::none(),
      nb::arg("opset") = nn::kOnnxNewestOpset, nb::arg("precision") = "f32",
      "Writes a weight file's network as an ONNX model, as `slidegrade export --format onnx` does: a trained model "
      "(best.h5; its model card goes into the metadata) or a plain network (ImageNet weights). Input 'image' float32 "
      "[N, H, W, 3] normalised as predict() takes it (layout='nchw': [N, 3, H, W]); output 'logits' float32 "
      "[N, outputs]. batch: None (a symbolic 'batch' dimension) or a fixed count; height and width are always free. "
      "opset 13..17; precision 'f32' or 'f16' (inside the graph; input and output stay float32). Returns {'path', "
      "'arch', 'outputs', 'model_card', 'nodes', 'initializers', 'bytes'}. Raises slidegrade.Error naming the file "
      "(missing, damaged, a training checkpoint without a model card), slidegrade.ArgumentError for a bad option.");
}

}  // namespace sg::python
