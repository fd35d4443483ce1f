#include "train/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <unordered_map>

#include "core/allocator.h"
#include "core/error.h"
#include "core/meta_device.h"
#include "grading/model_input.h"
#include "nn/optimizer_kind.h"
#include "train/optimizer.h"

namespace sg::train {

// What the allocator hands out for a request of `bytes` (its block rounding).
size_t allocator_bytes(size_t bytes) { return Allocator::round_size(bytes); }

int64_t optimizer_state_count(std::string_view optimizer) {
  switch (parse_word(nn::kOptimizerWords, optimizer)) {
    case nn::OptimizerKind::adamw: return 2;
    case nn::OptimizerKind::sgd: return 1;
  }
  return 0;
}

StepResult run_trainer_step(nn::EfficientNet& model, Optimizer& optimizer, int64_t batch, int64_t height, int64_t width,
                            const TrainerStepHooks& hooks) {
  const std::vector<nn::Parameter*> params = model.parameters();
  SG_CHECK(!params.empty(), "run_trainer_step: the model has no parameters");
  const Device device = params.front()->value.device();
  AllocationScope phase("batches");
  // DeviceBatch (data/async_loader.h) of this batch and of the next: the trainer takes batch k+1
  // from the loader, and queues its copy, before step k runs.
  struct Uploaded {
    Tensor pixels, labels;
  };
  const auto upload = [&] {
    Uploaded b{Tensor::empty({batch, height, width, 3}, DType::u8, device, "batch pixels"),
               Tensor::empty({batch}, DType::i32, device, "batch labels")};
    if (hooks.fill) hooks.fill(b.pixels, b.labels);
    return b;
  };
  const Uploaded current = upload();
  const Uploaded next = upload();
  // FoldRun::training_targets, then model_input.
  Tensor targets = Tensor::empty({batch}, DType::i32, device, "targets");
  targets.copy_from(current.labels);
  const Tensor images = grading::normalize_mosaics(current.pixels, model.precision(), grading::InputNormalization{}, {});
  const Batch step_batch{images, targets};
  if (hooks.before_step) hooks.before_step(step_batch);
  TrainStepOptions options;
  options.after_forward = hooks.after_forward;
  TrainStep step(model, optimizer, options);
  phase.relabel("training step");
  return step.micro_batch(step_batch);
}

namespace {

// The optimizer with `states` f32 tensors per parameter: AdamW (2), SGD with momentum (1) or
// plain SGD (0). Hyper-parameters do not change what it allocates.
std::unique_ptr<Optimizer> make_optimizer(std::vector<nn::Parameter*> params, int64_t states) {
  switch (states) {
    case 2: return std::make_unique<AdamW>(std::move(params), AdamWOptions{});
    case 1: return std::make_unique<Sgd>(std::move(params), SgdOptions{.momentum = 0.9f});
    case 0: return std::make_unique<Sgd>(std::move(params), SgdOptions{});
  }
  throw Error(detail::concat("memory plan: ", states, " optimizer states per parameter (AdamW has 2, SGD with momentum 1, ",
                             "SGD 0)"));
}

enum class Part { weights, compute_weights, gradients, optimizer_state, batch, workspace };

// What each persistent tensor is, by the address of its block (the meta allocator never reuses one).
class PartsByAddress {
 public:
  explicit PartsByAddress(const meta::Session& session) : session_(session) {}
  void add(const Tensor& t, Part part) {
    if (!t.defined() || t.nbytes() == 0) return;
    if (const std::optional<meta::BlockLife> block = session_.block_of(t.data())) parts_[block->address] = part;
  }
  // The parts of every block live at `event`; what is not persistent is saved or a temporary.
  MemoryParts at(uint64_t event) const {
    MemoryParts parts;
    for (const meta::BlockLife& block : session_.blocks()) {
      if (!block.live_at(event)) continue;
      const auto it = parts_.find(block.address);
      if (it == parts_.end()) {
        (block.saved_at(event) ? parts.saved : parts.temporaries) += block.bytes;
        continue;
      }
      switch (it->second) {
        case Part::weights: parts.weights += block.bytes; break;
        case Part::compute_weights: parts.compute_weights += block.bytes; break;
        case Part::gradients: parts.gradients += block.bytes; break;
        case Part::optimizer_state: parts.optimizer_state += block.bytes; break;
        case Part::batch: parts.batch += block.bytes; break;
        case Part::workspace: parts.workspace += block.bytes; break;
      }
    }
    return parts;
  }

 private:
  const meta::Session& session_;
  std::unordered_map<uintptr_t, Part> parts_;
};

void check_request(const MemoryPlanRequest& r) {
  SG_CHECK(r.batch >= 1, "memory plan: batch ", r.batch, " must be >= 1");
  SG_CHECK(r.height >= nn::EfficientNet::kMinImageSize && r.width >= nn::EfficientNet::kMinImageSize, "memory plan: image ",
           r.height, "x", r.width, " is too small: at least ", nn::EfficientNet::kMinImageSize, "x",
           nn::EfficientNet::kMinImageSize, " (the network downsamples by 32)");
  SG_CHECK(r.activations == DType::f32 || r.activations == DType::f16 || r.activations == DType::bf16,
           "memory plan: activations must be f32, f16 or bf16, got ", dtype_name(r.activations));
  SG_CHECK(r.optimizer_states >= 0, "memory plan: ", r.optimizer_states, " optimizer states per parameter");
  SG_CHECK(!r.checkpointing.is_automatic(),
           "memory plan: checkpointing 'auto' needs a budget (choose_checkpointing / --memory)");
}

}  // namespace

MemoryPlan plan_training_step(const MemoryPlanRequest& request) {
  check_request(request);
  const Device meta = Device::meta();
  meta::Session session(meta::Target{request.cuda, request.cuda_arch, request.cublas_workspace_held});
  MemoryPlan plan;
  std::unique_ptr<nn::EfficientNet> model;
  std::unique_ptr<Optimizer> optimizer;
  {
    const AllocationScope setup("model and optimizer");
    model = std::make_unique<nn::EfficientNet>(request.config, meta);
    model->set_training(true);
    model->set_checkpointing(request.checkpointing);
    model->set_precision(request.activations);
    optimizer = make_optimizer(model->parameters(), request.optimizer_states);
  }
  plan.parameters = model->parameter_count();
  plan.checkpointed = request.checkpointing.resolve(int64_t(model->blocks().size()));

  // The step as the trainer takes it; what the forward left live is read before the backward. The
  // batch's tensors are noted while they are live (they are freed when the step returns).
  PartsByAddress parts(session);
  TrainerStepHooks hooks;
  hooks.fill = [&](Tensor& pixels, Tensor& labels) {
    parts.add(pixels, Part::batch);
    parts.add(labels, Part::batch);
  };
  hooks.before_step = [&](const Batch& batch) {
    parts.add(batch.images, Part::batch);
    parts.add(batch.targets, Part::batch);
  };
  hooks.after_forward = [&] {
    plan.forward_macs = session.macs();
    plan.saved_after_forward = session.saved_bytes();
    plan.in_use_after_forward = session.in_use();
  };
  run_trainer_step(*model, *optimizer, request.batch, request.height, request.width, hooks);
  plan.recomputed_macs = session.macs() - plan.forward_macs;
  plan.peak = session.peak();
  plan.peak_at = session.peak_scope();
  for (nn::Parameter* p : model->parameters()) {
    parts.add(p->value, Part::weights);
    parts.add(p->grad, Part::gradients);
    parts.add(p->compute.value, Part::compute_weights);
  }
  for (nn::Buffer* b : model->buffers()) parts.add(b->value, Part::weights);
  for (const nn::Buffer& b : optimizer->state()) parts.add(b.value, Part::optimizer_state);
  if (const Tensor* workspace = session.kept("cuBLAS workspace")) parts.add(*workspace, Part::workspace);
  plan.at_peak = parts.at(session.peak_event());
  return plan;
}

std::optional<nn::CheckpointPolicy> choose_checkpointing(const MemoryPlanRequest& request, size_t budget) {
  MemoryPlanRequest r = request;
  r.checkpointing = nn::CheckpointPolicy::none();
  if (plan_training_step(r).peak <= budget) return r.checkpointing;
  // Rank blocks by activation bytes freed per recomputed MAC: each block alone, checkpointed,
  // against none (its internals minus its input).
  const size_t count = size_t(nn::efficientnet_layout(r.config).block_count());
  const MemoryPlan none = plan_training_step(r);
  std::vector<double> score(count);
  for (size_t i = 0; i < count; ++i) {
    std::vector<bool> one(count, false);
    one[i] = true;
    r.checkpointing = nn::CheckpointPolicy::blocks(one);
    const MemoryPlan p = plan_training_step(r);
    const double freed = double(none.saved_after_forward) - double(p.saved_after_forward);
    score[i] = freed / double(std::max<int64_t>(1, p.recomputed_macs));
  }
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<bool> selected(count, false);
  for (size_t i : order) {
    selected[i] = true;
    r.checkpointing = nn::CheckpointPolicy::blocks(selected);
    if (plan_training_step(r).peak <= budget) {
      if (std::all_of(selected.begin(), selected.end(), [](bool s) { return s; })) return nn::CheckpointPolicy::every_block();
      return r.checkpointing;
    }
  }
  return std::nullopt;
}

int64_t largest_batch(const MemoryPlanRequest& request, size_t budget, int64_t max_batch) {
  auto fits = [&](int64_t batch) {
    MemoryPlanRequest r = request;
    r.batch = batch;
    if (r.checkpointing.is_automatic()) return choose_checkpointing(r, budget).has_value();
    return plan_training_step(r).peak <= budget;
  };
  if (!fits(1)) return 0;
  int64_t good = 1, bad = 2;
  while (bad <= max_batch && fits(bad)) {
    good = bad;
    bad *= 2;
  }
  if (bad > max_batch) {
    if (fits(max_batch)) return max_batch;
    bad = max_batch;
  }
  while (bad - good > 1) {
    const int64_t mid = good + (bad - good) / 2;
    (fits(mid) ? good : bad) = mid;
  }
  return good;
}

}  // namespace sg::train
