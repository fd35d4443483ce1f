#pragma once
// Fine-tuning start: ImageNet (or any) weights into a network with the task's own head.
//
//   EfficientNetConfig config = pretrained_config("b0_imagenet.h5", 5);  // the file's arch, padding,
//   EfficientNet model(config);                                          // BN eps, normalisation;
//   PretrainedReport report = load_pretrained(model, "b0_imagenet.h5");  // 5 outputs
//   std::cout << format_pretrained_report(report);
//
// Every tensor whose name and shape match is loaded (the backbone); the classifier of another
// width stays at its fresh initialisation and is reported as new; tensors of the file the model
// has no place for are reported as skipped, by name. A file of another arch (B3 weights into a
// B0) is an error, not a partial load.
#include <string>
#include <vector>

#include "nn/efficientnet.h"

namespace sg {

struct PretrainedReport {
  std::string path;
  std::string file_arch;
  std::vector<std::string> loaded;   // model order
  std::vector<std::string> skipped;  // in the file, not used: "name: why"
  std::vector<std::string> fresh;    // in the model, not in the file (or of another shape): initialised
  std::vector<std::string> notes;    // config differences between the file and the model worth knowing
};

// The file's architecture config (arch_config) with the task's number of outputs. Throws naming
// the file when it is not a slidegrade weight file (import Keras files first: slidegrade import).
nn::EfficientNetConfig pretrained_config(const std::string& path, int64_t outputs);

// Loads what fits into `model` and marks its parameters changed (compute copies and folded
// inference weights are rebuilt). Throws naming the file when its arch differs from the model's.
PretrainedReport load_pretrained(nn::EfficientNet& model, const std::string& path);

// "loaded 211 tensors from W.h5 (efficientnet-b0); skipped 2: ...; new 2: ..." over several lines.
std::string format_pretrained_report(const PretrainedReport& report);

}  // namespace sg
