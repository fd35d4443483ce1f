#pragma once
// A slidegrade weight file -> an ONNX model for ONNX Runtime, OpenVINO, TensorRT (docs/onnx_export.md).
//
// The graph is written by the module tree itself (Module::export_onnx, nn/onnx_graph.h) around
// this file's input and output:
//   image   float32 [N, H, W, 3] (NHWC, the default) or [N, 3, H, W] (NCHW), normalised exactly as
//           `slidegrade forward` takes it; N fixed or symbolic ("batch"), H and W always symbolic
//   logits  float32 [N, outputs]
// Inside, the eval-mode network in f32, or in f16 (weights and activations; a Cast at each end).
// Batch norm is kept as BatchNormalization over the running statistics. The file's metadata
// holds the arch config, the input normalisation and, for trained models, the model card
// (grading/model_card.h), under "slidegrade.*" keys.
//
// What can be exported: trained models (best.h5, with a model card) and plain network weight files
// (ImageNet weights from `slidegrade import` or weights/convert_torch.py; no card, the metadata says
// so). A training checkpoint has no card: refused, naming the run's best.h5.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "core/option_words.h"
#include "nn/efficientnet.h"
#include "nn/onnx_graph.h"
#include "weights/weight_file.h"

namespace sg::infer {

enum class OnnxLayout { nhwc, nchw };
inline constexpr OptionWord<OnnxLayout> kOnnxLayoutWordList[] = {
    {OnnxLayout::nhwc, "nhwc"},
    {OnnxLayout::nchw, "nchw"},
};
inline constexpr OptionWords<OnnxLayout> kOnnxLayoutWords{"ONNX input layout", kOnnxLayoutWordList};

// The compute types an export can have (bf16 has no ONNX Runtime CPU kernels worth the name).
inline constexpr OptionWord<DType> kOnnxPrecisionWordList[] = {
    {DType::f32, "f32", {"float32", "fp32"}},
    {DType::f16, "f16", {"float16", "fp16", "half"}},
};
inline constexpr OptionWords<DType> kOnnxPrecisionWords{"ONNX precision", kOnnxPrecisionWordList};

struct OnnxExportOptions {
  OnnxLayout layout = OnnxLayout::nhwc;
  int64_t batch = 0;  // 0: symbolic ("batch"); else fixed
  int64_t opset = nn::kOnnxNewestOpset;
  DType precision = DType::f32;
};

// Parses "dynamic" or a positive count, as --batch takes it (throws UsageError otherwise).
int64_t parse_onnx_batch(std::string_view text);

struct OnnxExportReport {
  std::string arch;
  int64_t outputs = 0;
  bool model_card = false;  // a trained model's card went into the metadata
  int64_t nodes = 0, initializers = 0;
  size_t bytes = 0;  // the file's size
};

// Writes `output` atomically. Throws sg::Error naming the file: missing or damaged weight file, a
// checkpoint without a model card, tensors that do not fit the arch, an option out of range.
OnnxExportReport export_onnx(const std::string& weights, const std::string& output, const OnnxExportOptions& options);

// The same for a network at hand (eval mode, any device): `attributes.user` holds its model card when
// it has one (grading/model_card.h) and anything else to keep, e.g. "source"; all go into the metadata.
OnnxExportReport export_onnx(const nn::EfficientNet& model, const WeightAttributes& attributes,
                             const std::string& output, const OnnxExportOptions& options);

}  // namespace sg::infer
