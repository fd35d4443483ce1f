// slidegrade inspect: what a weight file is (slidegrade weights, training checkpoint, Keras legacy
// HDF5), its arch, its layer count and any tensor that could not be placed in the arch's network.
// Exit status 1 when the file is unreadable or holds tensors that do not fit.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <map>
#include <set>
#include <string>

#include "cli/command.h"
#include "core/child_process.h"
#include "core/error.h"
#include "nn/efficientnet.h"
#include "nn/efficientnet_config_text.h"
#include "weights/hdf5_tensor.h"
#include "weights/keras_import.h"
#include "weights/weight_file.h"

namespace sg::cli {

namespace {
int inspect_keras(const std::string& path) {
  const keras::KerasInspection i = keras::inspect_keras_file(path);
  std::printf("file: %s\nformat: %s (layers under %s)\n", path.c_str(), keras::format_name(i.format),
              i.format == keras::KerasFormat::keras3_weights_h5 ? "/layers" : i.root.c_str());
  const std::string arch = !i.arch.empty()           ? "efficientnet-" + i.arch
                           : i.closest_arch.empty() ? std::string("unknown")
                                                    : "unknown (closest: efficientnet-" + i.closest_arch + ")";
  std::printf("arch: %s\n", arch.c_str());
  std::printf("checksum: %s\n", h5::describe(h5::FileChecksum{}).c_str());  // Keras files carry none
  std::printf("layers: %zu (%zu with weights)\n", i.layer_count, i.weighted_layer_count);
  std::printf("classifier: %s\n", i.classifier_layer.empty() ? "none (notop)" : i.classifier_layer.c_str());
  std::printf("input normalisation layer: %s\n", i.has_normalization ? "yes" : "no");
  for (const std::string& p : i.problems) std::printf("problem: %s\n", p.c_str());
  std::printf("unplaced tensors: %zu\n", i.unplaced.size());
  for (const std::string& u : i.unplaced) std::printf("  %s\n", u.c_str());
  return i.problems.empty() && i.unplaced.empty() ? 0 : 1;
}

int inspect_ours(const std::string& path) {
  const WeightFileInfo info = read_weight_file_info(path);
  std::printf("file: %s\nformat: %s (format_version %lld)\n", path.c_str(),
              info.is_checkpoint ? "slidegrade training checkpoint" : "slidegrade weights",
              static_cast<long long>(info.format_version));
  std::printf("checksum: %s\n", h5::describe(info.checksum).c_str());
  SG_CHECK(!info.attributes.arch_config.empty(), path, ": no arch_config attribute");
  const nn::EfficientNetConfig config = nn::parse_config_text(info.attributes.arch_config, path);
  std::printf("arch: efficientnet-%s\narch_config: %s\n", config.arch.c_str(), info.attributes.arch_config.c_str());
  for (const auto& [key, value] : info.attributes.user) std::printf("%s: %s\n", key.c_str(), value.c_str());
  nn::EfficientNet model(config);
  std::map<std::string, Shape> model_shapes;
  for (const NamedTensor& t : named_tensors(model.parameters(), model.buffers())) model_shapes[t.name] = t.tensor.shape();
  std::set<std::string> layers;
  size_t unplaced = 0;
  std::string lines;
  for (const StoredTensor& t : info.tensors) {
    layers.insert(t.name.substr(0, t.name.rfind('.')));
    const auto it = model_shapes.find(t.name);
    if (it == model_shapes.end() || it->second != t.shape) {
      ++unplaced;
      lines += "  " + t.name + " " + t.shape.str() +
               (it == model_shapes.end() ? " (no such tensor)" : " (model expects " + it->second.str() + ")") + "\n";
    }
  }
  std::printf("layers: %zu (%zu tensors)\nunplaced tensors: %zu\n%s", layers.size(), info.tensors.size(), unplaced,
              lines.c_str());
  return unplaced == 0 ? 0 : 1;
}

int run_inspect(const std::string& path) {
  SG_CHECK(std::filesystem::is_regular_file(path), path, ": no such file");
  if (keras::is_keras_file(path)) return inspect_keras(path);
  const Hdf5Handle file = h5::open_file_for_reading(path);  // names non-HDF5 and truncated files
  SG_CHECK(h5::has_attribute(file.get(), "format"), path,
           ": not a slidegrade weight file, checkpoint or Keras legacy weight file (no format or layer_names attribute)");
  return inspect_ours(path);
}
}  // namespace

void add_inspect_command(CLI::App& app, Commands& commands) {
  auto path = std::make_shared<std::string>();
  CLI::App* parser = app.add_subcommand("inspect", "Say what a weight file is: format, arch, layers, unplaced tensors");
  parser->add_option("file", *path, "weight file (.h5)")->required();
  // In a child process, like import: the file may come from elsewhere (core/child_process.h).
  commands.push_back({parser, [path] {
                        std::error_code error;
                        const uint64_t bytes = std::filesystem::file_size(*path, error);
                        return run_in_child_process(
                            "inspect " + *path, [&] { return run_inspect(*path); }, child_time_limit_for_file(error ? 0 : bytes));
                      }});
}

}  // namespace sg::cli
