// slidegrade plan: the predicted peak memory of one training step, its parts, whether it fits a
// budget, the checkpointing chosen, and the largest batch that fits with and without it.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/cuda/device_code.h"
#include "core/cuda_architectures.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/cuda_kernel_paths.h"
#include "train/memory_plan.h"
#include "nn/optimizer_kind.h"
#include "nn/precision.h"
#include "train/option_validators.h"

namespace sg::cli {

namespace {
struct PlanOptions {
  std::string arch = "b0";
  int64_t image = 0, height = 0, width = 0, batch = 1, outputs = 6;
  std::string precision = "f32", optimizer = "adamw", checkpoint = "none", memory = "4GiB", device = "cuda";
  std::string sm = "auto";
};

// The architecture of the code whose kernels (and their scratch) the plan is for, and where it came from.
std::pair<int, std::string> plan_architecture(const std::string& text) {
  if (text == "auto") {
    if (cuda_available() && cuda::code_architecture(0) > 0)
      return {cuda::code_architecture(0), detail::concat("cuda:0, ", cuda_device_name(0))};
    return {61, "no GPU here: a GTX 1050 Ti's, the card the 4 GiB default is for; --sm to choose"};
  }
  const std::string digits = text.rfind("sm_", 0) == 0 ? text.substr(3) : text;
  int sm = 0;
  const auto [end, status] = std::from_chars(digits.data(), digits.data() + digits.size(), sm);
  SG_CHECK(status == std::errc() && end == digits.data() + digits.size() && sm >= 50 && sm <= 200, "--sm '", text,
           "': expected auto or a compute capability such as 61 (GTX 10xx), 75 (T4, RTX 20xx), 86 (RTX 30xx), 89 "
           "(RTX 40xx) or 90 (H100)");
  const CudaArchitectures& held = compiled_cuda_architectures();
  const int loaded = held.empty() ? sm : loaded_cuda_architecture(held, sm);
  if (loaded == 0) return {sm, detail::concat("--sm ", sm, "; this binary holds no code for it")};
  return {loaded, detail::concat("--sm ", sm, loaded == sm ? "" : detail::concat(", which runs this binary's sm_", loaded, " code"))};
}

std::string percent(size_t part, size_t whole) {
  return whole ? detail::concat(int64_t(std::llround(100.0 * double(part) / double(whole))), "%") : "-";
}

int run_plan(const PlanOptions& o) {
  train::MemoryPlanRequest request;
  request.config = nn::efficientnet_config(o.arch);
  request.config.outputs = o.outputs;
  const int64_t side = o.image > 0 ? o.image : request.config.resolution;
  request.height = o.height > 0 ? o.height : side;
  request.width = o.width > 0 ? o.width : side;
  request.batch = o.batch;
  request.activations = nn::parse_precision(o.precision);
  request.optimizer_states = train::optimizer_state_count(o.optimizer);
  const std::optional<Device> device = parse_device_spelling(o.device);
  request.cuda = device ? device->is_cuda() : cuda_available();  // auto: this machine's
  std::string arch_source;
  if (request.cuda) std::tie(request.cuda_arch, arch_source) = plan_architecture(o.sm);
  const size_t budget = parse_bytes(o.memory);
  const nn::CheckpointPolicy asked = nn::parse_checkpoint_policy(o.checkpoint);

  // auto: the least recomputation that fits; when nothing fits, show the plan of every block.
  std::optional<nn::CheckpointPolicy> chosen = asked;
  if (asked.is_automatic()) chosen = train::choose_checkpointing(request, budget);
  request.checkpointing = chosen.value_or(nn::CheckpointPolicy::every_block());
  const train::MemoryPlan plan = train::plan_training_step(request);

  std::printf("efficientnet-%s, %lldx%lld, batch %lld, %s activations, %s, %lld outputs, %s kernels\n",
              request.config.arch.c_str(), (long long)request.height, (long long)request.width,
              (long long)request.batch, o.precision.c_str(), o.optimizer.c_str(), (long long)o.outputs,
              o.device.c_str());
  int64_t checkpointed = 0;
  for (bool c : plan.checkpointed) checkpointed += c;
  std::printf("checkpointing: %s%s (%lld of %zu blocks; recompute %.1f%% of the forward's MACs)\n",
              request.checkpointing.str().c_str(),
              asked.is_automatic() ? (chosen ? " (auto)" : " (auto: nothing fits; showing every block)") : "",
              (long long)checkpointed, plan.checkpointed.size(),
              plan.forward_macs ? 100.0 * double(plan.recomputed_macs) / double(plan.forward_macs) : 0.0);
  std::printf("parameters: %lld\n", (long long)plan.parameters);
  if (request.cuda) {
    std::printf("kernels for sm_%d code (%s):\n", request.cuda_arch, arch_source.c_str());
    const std::string paths = describe_cuda_kernel_paths(request.cuda_arch, request.cuda_arch, request.activations);
    for (size_t begin = 0; begin < paths.size();) {
      const size_t end = std::min(paths.find('\n', begin), paths.size());
      std::printf("  %s\n", paths.substr(begin, end - begin).c_str());
      begin = end + 1;
    }
  }
  std::printf("\n");

  const train::MemoryParts& p = plan.at_peak;
  std::printf("predicted peak: %s (allocator bytes in use), at %s\n", format_bytes(plan.peak).c_str(),
              plan.peak_at.c_str());
  auto row = [&](const char* name, size_t bytes) {
    std::printf("  %-34s %12s  %5s\n", name, format_bytes(bytes).c_str(), percent(bytes, plan.peak).c_str());
  };
  row("weights (f32 master, BN statistics)", p.weights);
  row("compute weights (f16/bf16 copies)", p.compute_weights);
  row("gradients (f32)", p.gradients);
  row("optimizer state (f32)", p.optimizer_state);
  row("batches (uint8 this + next, input)", p.batch);
  row("activations saved for backward", p.saved);
  row("temporaries and kernel scratch", p.temporaries);
  if (request.cuda) row("cuBLAS workspace (kept)", p.workspace);
  std::printf("  (saved for backward when the forward ends: %s)\n\n", format_bytes(plan.saved_after_forward).c_str());

  const bool fits = plan.peak <= budget;
  const size_t margin = fits ? budget - plan.peak : plan.peak - budget;
  std::printf("budget %s: %s (%s %s)\n", format_bytes(budget).c_str(), fits ? "fits" : "does NOT fit",
              format_bytes(margin).c_str(), fits ? "to spare" : "over");
  if (request.cuda)
    std::printf("  (the CUDA context is outside the allocator: leave it room on the card)\n");

  train::MemoryPlanRequest none = request;
  none.checkpointing = nn::CheckpointPolicy::none();
  train::MemoryPlanRequest every = request;
  every.checkpointing = nn::CheckpointPolicy::every_block();
  std::printf("largest batch that fits: %lld without checkpointing, %lld with checkpointing (every block)\n",
              (long long)train::largest_batch(none, budget), (long long)train::largest_batch(every, budget));
  return fits ? 0 : 3;
}
}  // namespace

void add_plan_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* parser =
      app.add_subcommand("plan", "Predict the peak memory of one training step, and the largest batch that fits");
  parser->add_option("--arch", o->arch, "EfficientNet variant")->capture_default_str()->transform(train::arch_choice());
  parser->add_option("--image", o->image, "input side in pixels (default: the arch's resolution)");
  parser->add_option("--height", o->height, "input height (overrides --image)");
  parser->add_option("--width", o->width, "input width (overrides --image)");
  parser->add_option("--batch", o->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--outputs", o->outputs, "classifier outputs")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--precision", o->precision, "activations")
      ->capture_default_str()
      ->transform(train::word_choice(nn::kPrecisionWords));
  parser->add_option("--optimizer", o->optimizer, "its state tensors count (sgd: with momentum)")
      ->capture_default_str()
      ->transform(train::word_choice(nn::kOptimizerWords));
  parser->add_option("--checkpoint", o->checkpoint, "gradient checkpointing; auto: the least that fits")
      ->capture_default_str()
      ->check(train::checkpoint_choice());
  parser->add_option("--memory,--memory-limit,--memory_limit", o->memory,
                     "budget: 4GiB, 3.5GB, 4096MiB, bytes (the --memory-limit of train, grade, forward and bench)")
      ->capture_default_str()
      ->check(train::parsed_by([](const std::string& text) { (void)parse_bytes(text); }, "SIZE", "memory"));
  parser->add_option("--device", o->device, "whose kernel scratch to count (cuda:N: a CUDA card's; auto: this machine's)")
      ->capture_default_str()
      ->check(train::device_choice());
  parser->add_option("--sm", o->sm,
                     "the card's compute capability (61: GTX 10xx, 75, 86, 89, 90...): which kernels run and their "
                     "scratch; auto: cuda:0's, else 61")
      ->capture_default_str();
  commands.push_back({parser, [o] { return run_plan(*o); }});
}

}  // namespace sg::cli
