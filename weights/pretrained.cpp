#include "weights/pretrained.h"

#include <set>

#include "nn/efficientnet_config_text.h"
#include "nn/precision.h"
#include "weights/weight_file.h"

namespace sg {

namespace {

nn::EfficientNetConfig file_config(const std::string& path, const WeightFileInfo& info) {
  SG_CHECK(!info.attributes.arch_config.empty(), path,
           ": no arch_config attribute, so the architecture is unknown (convert Keras or PyTorch files with "
           "slidegrade import / weights/convert_torch.py first)");
  return nn::parse_config_text(info.attributes.arch_config, path);
}

}  // namespace

nn::EfficientNetConfig pretrained_config(const std::string& path, int64_t outputs) {
  SG_CHECK(outputs >= 1, "pretrained_config: outputs ", outputs, " must be at least 1");
  nn::EfficientNetConfig config = file_config(path, read_weight_file_info(path));
  config.outputs = outputs;
  return config;
}

PretrainedReport load_pretrained(nn::EfficientNet& model, const std::string& path) {
  const WeightFileInfo info = read_weight_file_info(path);
  const nn::EfficientNetConfig from = file_config(path, info);
  const nn::EfficientNetConfig& to = model.config();
  SG_CHECK(from.arch == to.arch && from.width == to.width && from.depth == to.depth && from.lite == to.lite, path,
           ": holds efficientnet-", from.arch, " weights, the model is efficientnet-", to.arch,
           " (build the model from pretrained_config(path, outputs))");

  PretrainedReport report;
  report.path = path;
  report.file_arch = from.arch;
  const auto note_if = [&report](bool differs, const std::string& text) {
    if (differs) report.notes.push_back(text);
  };
  note_if(from.padding != to.padding, detail::concat("padding: the weights were trained with ",
                                                     nn::padding_name(from.padding), ", the model uses ",
                                                     nn::padding_name(to.padding)));
  note_if(from.bn_eps != to.bn_eps, detail::concat("BN epsilon: file ", from.bn_eps, ", model ", to.bn_eps));
  note_if(from.activation != to.activation, "activation differs from the one the weights were trained with");
  note_if(from.mean != to.mean || from.std != to.std,
          "input normalisation differs from the one the weights expect (feed the file's mean/std)");

  LoadOptions options;
  options.partial = true;
  options.convert_floating = true;
  const LoadReport loaded = load_weights(path, named_tensors(model.parameters(), model.buffers()), options);
  report.loaded = loaded.loaded;
  for (const std::string& name : loaded.skipped) report.skipped.push_back(name + ": not in the model");
  for (const std::string& line : loaded.mismatched) report.skipped.push_back(line);
  const std::set<std::string> done(loaded.loaded.begin(), loaded.loaded.end());
  for (const NamedTensor& t : named_tensors(model.parameters(), model.buffers()))
    if (!done.count(t.name)) report.fresh.push_back(t.name);
  nn::mark_parameters_changed(model);
  return report;
}

std::string format_pretrained_report(const PretrainedReport& r) {
  std::string s = detail::concat("loaded ", r.loaded.size(), " tensors from ", r.path, " (efficientnet-", r.file_arch,
                                 ")\n");
  s += detail::concat("skipped ", r.skipped.size(), r.skipped.empty() ? "" : ":", "\n");
  for (const std::string& line : r.skipped) s += "  " + line + "\n";
  s += detail::concat("new (freshly initialised) ", r.fresh.size(), r.fresh.empty() ? "" : ":", "\n");
  for (const std::string& name : r.fresh) s += "  " + name + "\n";
  for (const std::string& note : r.notes) s += "note: " + note + "\n";
  return s;
}

}  // namespace sg
