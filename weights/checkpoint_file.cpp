#include "weights/checkpoint_file.h"

#include <set>

#include "core/error.h"
#include "weights/atomic_hdf5_write.h"
#include "weights/hdf5_tensor.h"

namespace sg {
namespace {

constexpr const char* kOptimizer = "optimizer";
constexpr const char* kScheduler = "scheduler";
constexpr const char* kTraining = "training";

bool is_fixed_progress_attribute(const std::string& name) {
  return name == "step" || name == "epoch" || name == "data_position" || name == "loss_scale" || name == "rng_seed" ||
         name == "rng_offset";
}

// kind + one f64 attribute per scalar on `group`.
void write_kind_and_scalars(hid_t group, const std::string& kind, const std::map<std::string, double>& scalars,
                            const std::string& path) {
  h5::write_string_attribute(group, "kind", kind, path);
  for (const auto& [name, value] : scalars) {
    SG_CHECK(name != "kind", path, ": scalar name \"kind\" is reserved");
    h5::write_double_attribute(group, name, value, path);
  }
}

void read_kind_and_scalars(hid_t group, std::string& kind, std::map<std::string, double>& scalars,
                           const std::string& path) {
  kind = h5::read_string_attribute(group, "kind", path);
  for (const std::string& name : h5::attribute_names(group, path))
    if (name != "kind") scalars[name] = h5::read_double_attribute(group, name, path);
}

void write_training(hid_t file, const std::string& path, const std::vector<NamedTensor>& model,
                    const TrainingCheckpoint& checkpoint) {
  std::set<std::string> model_names;
  for (const NamedTensor& t : model) model_names.insert(t.name);

  Hdf5Handle optimizer = h5::create_group(file, kOptimizer, path);
  write_kind_and_scalars(optimizer.get(), checkpoint.optimizer.kind, checkpoint.optimizer.scalars, path);
  for (const auto& [parameter, slots] : checkpoint.optimizer.slots) {
    SG_CHECK(model_names.count(parameter), path, ": optimizer state for \"", parameter,
             "\", which is not a model tensor");
    Hdf5Handle group = h5::create_group(optimizer.get(), parameter, path);
    for (const auto& [slot, tensor] : slots) h5::write_tensor(group.get(), slot, tensor, path);
  }

  Hdf5Handle scheduler = h5::create_group(file, kScheduler, path);
  write_kind_and_scalars(scheduler.get(), checkpoint.scheduler.kind, checkpoint.scheduler.scalars, path);

  const TrainingProgress& progress = checkpoint.progress;
  Hdf5Handle training = h5::create_group(file, kTraining, path);
  h5::write_int_attribute(training.get(), "step", progress.step, path);
  h5::write_int_attribute(training.get(), "epoch", progress.epoch, path);
  h5::write_int_attribute(training.get(), "data_position", progress.data_position, path);
  h5::write_double_attribute(training.get(), "loss_scale", progress.loss_scale, path);
  h5::write_uint_attribute(training.get(), "rng_seed", progress.rng_seed, path);
  h5::write_uint_attribute(training.get(), "rng_offset", progress.rng_offset, path);
  for (const auto& [name, value] : progress.counters) {
    SG_CHECK(!is_fixed_progress_attribute(name), path, ": training counter \"", name, "\" clashes with a fixed field");
    h5::write_int_attribute(training.get(), name, value, path);
  }
  for (const auto& [name, value] : progress.values) {
    SG_CHECK(!is_fixed_progress_attribute(name) && !progress.counters.count(name), path, ": training value \"", name,
             "\" clashes with a fixed field or a counter");
    h5::write_double_attribute(training.get(), name, value, path);
  }
  for (const auto& [name, tensor] : progress.tensors) h5::write_tensor(training.get(), name, tensor, path);
}

}  // namespace

void save_checkpoint(const std::string& path, const std::vector<NamedTensor>& model,
                     const WeightAttributes& attributes, const TrainingCheckpoint& checkpoint) {
  h5::write_atomically(path, [&](hid_t file) {
    weights_detail::write_model(file, path, model, attributes);
    write_training(file, path, model, checkpoint);
  });
}

TrainingCheckpoint load_checkpoint(const std::string& path, const std::vector<NamedTensor>& model,
                                   const LoadOptions& options) {
  Hdf5Handle file = h5::open_file_for_reading(path);
  weights_detail::check_format(file.get(), path, options);
  for (const char* group : {kOptimizer, kScheduler, kTraining})
    SG_CHECK(h5::has_link(file.get(), group), path, ": a weights file, not a training checkpoint (no /", group,
             " group)");

  // Validate the optimizer's parameter names before changing the model.
  std::set<std::string> model_names;
  for (const NamedTensor& t : model) model_names.insert(t.name);
  Hdf5Handle optimizer = h5::open_group(file.get(), kOptimizer, path);
  const std::vector<std::string> parameters = h5::child_groups(optimizer.get(), path);
  std::vector<std::string> unknown;
  for (const std::string& parameter : parameters)
    if (!model_names.count(parameter)) unknown.push_back(parameter);
  if (!unknown.empty()) {
    std::string message = detail::concat(path, ": optimizer state for ", unknown.size(),
                                         " tensor(s) the model does not have:");
    for (const std::string& name : unknown) message += "\n  " + name;
    throw Error(message);
  }

  LoadOptions strict = options;
  strict.partial = false;
  weights_detail::load_model(file.get(), path, model, strict);

  TrainingCheckpoint checkpoint;
  read_kind_and_scalars(optimizer.get(), checkpoint.optimizer.kind, checkpoint.optimizer.scalars, path);
  for (const std::string& parameter : parameters) {
    Hdf5Handle group = h5::open_group(optimizer.get(), parameter, path);
    auto& slots = checkpoint.optimizer.slots[parameter];
    for (const std::string& slot : h5::child_datasets(group.get(), path))
      slots[slot] = h5::read_tensor(group.get(), slot, path);
  }

  Hdf5Handle scheduler = h5::open_group(file.get(), kScheduler, path);
  read_kind_and_scalars(scheduler.get(), checkpoint.scheduler.kind, checkpoint.scheduler.scalars, path);

  Hdf5Handle training = h5::open_group(file.get(), kTraining, path);
  TrainingProgress& progress = checkpoint.progress;
  progress.step = h5::read_int_attribute(training.get(), "step", path);
  progress.epoch = h5::read_int_attribute(training.get(), "epoch", path);
  progress.data_position = h5::read_int_attribute(training.get(), "data_position", path);
  progress.loss_scale = h5::read_double_attribute(training.get(), "loss_scale", path);
  progress.rng_seed = h5::read_uint_attribute(training.get(), "rng_seed", path);
  progress.rng_offset = h5::read_uint_attribute(training.get(), "rng_offset", path);
  for (const std::string& name : h5::attribute_names(training.get(), path)) {
    if (is_fixed_progress_attribute(name)) continue;
    if (h5::attribute_is_integer(training.get(), name, path))
      progress.counters[name] = h5::read_int_attribute(training.get(), name, path);
    else
      progress.values[name] = h5::read_double_attribute(training.get(), name, path);
  }
  for (const std::string& name : h5::child_datasets(training.get(), path))
    progress.tensors[name] = h5::read_tensor(training.get(), name, path);
  return checkpoint;
}

}  // namespace sg
