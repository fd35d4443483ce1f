#include "weights/weight_file.h"

#include <set>

#include "core/error.h"
#include "weights/atomic_hdf5_write.h"
#include "weights/hdf5_tensor.h"

namespace sg {
namespace {

constexpr const char* kModelGroup = "model";
constexpr const char* kTrainingGroup = "training";

bool is_reserved_attribute(const std::string& name) {
  return name == "format" || name == "format_version" || name == "arch_config";
}

void check_names(const std::string& path, const std::vector<NamedTensor>& tensors) {
  std::set<std::string> seen;
  for (const NamedTensor& t : tensors) {
    SG_CHECK(!t.name.empty() && t.name.find('/') == std::string::npos && t.name != "." && t.name != "..", path,
             ": tensor name \"", t.name, "\" is not allowed (empty, \".\", \"..\" or with '/')");
    SG_CHECK(seen.insert(t.name).second, path, ": tensor name \"", t.name, "\" appears twice");
  }
}

}  // namespace

namespace weights_detail {

void write_model(hid_t file, const std::string& path, const std::vector<NamedTensor>& tensors,
                 const WeightAttributes& attributes) {
  h5::write_string_attribute(file, "format", kWeightFormat, path);
  h5::write_int_attribute(file, "format_version", kWeightFormatVersion, path);
  h5::write_string_attribute(file, "arch_config", attributes.arch_config, path);
  for (const auto& [name, value] : attributes.user) {
    SG_CHECK(!is_reserved_attribute(name), path, ": user attribute \"", name, "\" is reserved by the format");
    h5::write_string_attribute(file, name, value, path);
  }
  Hdf5Handle model = h5::create_group(file, kModelGroup, path);
  for (const NamedTensor& t : tensors) h5::write_tensor(model.get(), t.name, t.tensor, path);
}

void check_format(hid_t file, const std::string& path, const LoadOptions& options) {
  SG_CHECK(h5::has_attribute(file, "format"), path, ": not a slidegrade weights file (no \"format\" attribute; "
           "expected format = \"", kWeightFormat, "\")");
  const std::string format = h5::read_string_attribute(file, "format", path);
  SG_CHECK(format == kWeightFormat, path, ": format is \"", format, "\", expected \"", kWeightFormat, "\"");
  const int64_t version = h5::read_int_attribute(file, "format_version", path);
  SG_CHECK(version >= 1 && version <= kWeightFormatVersion, path, ": format_version ", version,
           " is not one this build reads (1 to ", kWeightFormatVersion, ")");
  SG_CHECK(h5::has_link(file, kModelGroup), path, ": no /", kModelGroup, " group");
  if (options.expected_arch_config) {
    const std::string arch = h5::read_string_attribute(file, "arch_config", path);
    SG_CHECK(arch == *options.expected_arch_config, path, ": written for arch_config \"", arch,
             "\", the model is \"", *options.expected_arch_config, "\"");
  }
}

LoadReport load_model(hid_t file, const std::string& path, const std::vector<NamedTensor>& tensors,
                      const LoadOptions& options) {
  check_names(path, tensors);
  Hdf5Handle model = h5::open_group(file, kModelGroup, path);
  const std::vector<std::string> stored = h5::child_datasets(model.get(), path);
  const std::set<std::string> in_file(stored.begin(), stored.end());

  LoadReport report;
  std::vector<std::string> problems;
  std::vector<const NamedTensor*> to_load;
  std::set<std::string> in_model;
  for (const NamedTensor& t : tensors) {
    in_model.insert(t.name);
    SG_CHECK(t.tensor.defined(), path, ": model tensor \"", t.name, "\" is undefined, cannot load into it");
    if (!in_file.count(t.name)) {
      report.missing.push_back(t.name);
      problems.push_back(detail::concat("missing: ", t.name, " (model expects ", dtype_name(t.tensor.dtype()), " ",
                                        t.tensor.shape().str(), ")"));
      continue;
    }
    const h5::TensorInfo info = h5::tensor_info(model.get(), t.name, path);
    std::string mismatch;
    if (info.shape != t.tensor.shape()) {
      mismatch = detail::concat(t.name, ": file has ", info.shape.str(), ", model expects ", t.tensor.shape().str());
    } else if (info.dtype != t.tensor.dtype() &&
               !(options.convert_floating && is_floating(info.dtype) && is_floating(t.tensor.dtype()))) {
      mismatch = detail::concat(t.name, ": file has dtype ", dtype_name(info.dtype), ", model expects ",
                                dtype_name(t.tensor.dtype()));
    }
    if (mismatch.empty()) {
      to_load.push_back(&t);
    } else {
      report.mismatched.push_back(mismatch);
      problems.push_back(mismatch);
    }
  }
  for (const std::string& name : stored) {
    if (in_model.count(name)) continue;
    report.skipped.push_back(name);
    const h5::TensorInfo info = h5::tensor_info(model.get(), name, path);
    problems.push_back(
        detail::concat("unexpected: ", name, " (file has ", dtype_name(info.dtype), " ", info.shape.str(), ")"));
  }

  if (!options.partial && !problems.empty()) {
    std::string message = detail::concat(path, ": the weights do not match the model (", problems.size(),
                                         problems.size() == 1 ? " problem" : " problems", "):");
    for (const std::string& problem : problems) message += "\n  " + problem;
    throw Error(message);
  }
  for (const NamedTensor* t : to_load) {
    Tensor target = t->tensor;
    h5::read_tensor_into(model.get(), t->name, target, options.convert_floating, path);
    report.loaded.push_back(t->name);
  }
  return report;
}

}  // namespace weights_detail

void save_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                  const WeightAttributes& attributes) {
  check_names(path, tensors);
  h5::write_atomically(path, [&](hid_t file) { weights_detail::write_model(file, path, tensors, attributes); });
}

LoadReport load_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                        const LoadOptions& options) {
  Hdf5Handle file = h5::open_file_for_reading(path);
  weights_detail::check_format(file.get(), path, options);
  return weights_detail::load_model(file.get(), path, tensors, options);
}

WeightFileInfo read_weight_file_info(const std::string& path) {
  WeightFileInfo info;
  Hdf5Handle file = h5::open_file_for_reading(path, &info.checksum);
  weights_detail::check_format(file.get(), path, {});
  info.format_version = h5::read_int_attribute(file.get(), "format_version", path);
  info.attributes.arch_config = h5::read_string_attribute(file.get(), "arch_config", path);
  for (const std::string& name : h5::attribute_names(file.get(), path))
    if (!is_reserved_attribute(name)) info.attributes.user[name] = h5::read_string_attribute(file.get(), name, path);
  Hdf5Handle model = h5::open_group(file.get(), kModelGroup, path);
  for (const std::string& name : h5::child_datasets(model.get(), path)) {
    const h5::TensorInfo t = h5::tensor_info(model.get(), name, path);
    info.tensors.push_back({name, t.shape, t.dtype});
  }
  info.is_checkpoint = h5::has_link(file.get(), kTrainingGroup);
  return info;
}

}  // namespace sg
