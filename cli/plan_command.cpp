// slidegrade plan: the predicted peak memory of one training step, its parts, whether it fits a
// budget, the checkpointing chosen, and the largest batch that fits with and without it.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"
#include "nn/memory_plan.h"

namespace sg::cli {

namespace {
struct PlanOptions {
  std::string arch = "b0";
  int64_t image = 0, height = 0, width = 0, batch = 1, outputs = 6;
  std::string precision = "f32", optimizer = "adamw", checkpoint = "none", memory = "4GiB", device = "cuda";
};

DType parse_precision(const std::string& text) {
  if (text == "f32" || text == "fp32") return DType::f32;
  if (text == "f16" || text == "fp16") return DType::f16;
  if (text == "bf16") return DType::bf16;
  throw Error(detail::concat("--precision '", text, "': expected f32, f16 or bf16"));
}

std::string percent(size_t part, size_t whole) {
  return whole ? detail::concat(int64_t(std::llround(100.0 * double(part) / double(whole))), "%") : "-";
}

int run_plan(const PlanOptions& o) {
  nn::MemoryPlanRequest request;
  request.config = nn::efficientnet_config(o.arch);
  request.config.outputs = o.outputs;
  const int64_t side = o.image > 0 ? o.image : request.config.resolution;
  request.height = o.height > 0 ? o.height : side;
  request.width = o.width > 0 ? o.width : side;
  request.batch = o.batch;
  request.activations = parse_precision(o.precision);
  request.optimizer_states = nn::optimizer_state_count(o.optimizer);
  SG_CHECK(o.device == "cuda" || o.device == "cpu", "--device '", o.device, "': expected cuda or cpu");
  request.cuda = o.device == "cuda";
  const size_t budget = parse_bytes(o.memory);
  const nn::CheckpointPolicy asked = nn::parse_checkpoint_policy(o.checkpoint);

  // auto: the least recomputation that fits; when nothing fits, show the plan of every block.
  std::optional<nn::CheckpointPolicy> chosen = asked;
  if (asked.is_automatic()) chosen = nn::choose_checkpointing(request, budget);
  request.checkpointing = chosen.value_or(nn::CheckpointPolicy::every_block());
  const nn::MemoryPlan plan = nn::plan_training_step(request);

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
  std::printf("parameters: %lld\n\n", (long long)plan.parameters);

  const nn::MemoryParts& p = plan.at_peak;
  std::printf("predicted peak: %s (allocator bytes in use), at %s\n", format_bytes(plan.peak).c_str(),
              plan.peak_at.c_str());
  auto row = [&](const char* name, size_t bytes) {
    std::printf("  %-34s %12s  %5s\n", name, format_bytes(bytes).c_str(), percent(bytes, plan.peak).c_str());
  };
  row("weights (f32 master, BN statistics)", p.weights);
  row("compute weights (f16/bf16 copies)", p.compute_weights);
  row("gradients (f32)", p.gradients);
  row("optimizer state (f32)", p.optimizer_state);
  row("input batch", p.batch);
  row("activations saved for backward", p.saved);
  row("temporaries and kernel scratch", p.temporaries);
  std::printf("  (saved for backward when the forward ends: %s)\n\n", format_bytes(plan.saved_after_forward).c_str());

  const bool fits = plan.peak <= budget;
  const size_t margin = fits ? budget - plan.peak : plan.peak - budget;
  std::printf("budget %s: %s (%s %s)\n", format_bytes(budget).c_str(), fits ? "fits" : "does NOT fit",
              format_bytes(margin).c_str(), fits ? "to spare" : "over");
  if (request.cuda)
    std::printf("  (the CUDA context is outside the allocator: leave it room on the card; the cuBLAS workspace, "
                "4 MiB, 32 MiB from Hopper on, is inside --memory-limit but not in this plan)\n");

  nn::MemoryPlanRequest none = request;
  none.checkpointing = nn::CheckpointPolicy::none();
  nn::MemoryPlanRequest every = request;
  every.checkpointing = nn::CheckpointPolicy::every_block();
  std::printf("largest batch that fits: %lld without checkpointing, %lld with checkpointing (every block)\n",
              (long long)nn::largest_batch(none, budget), (long long)nn::largest_batch(every, budget));
  return fits ? 0 : 3;
}
}  // namespace

void add_plan_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* parser =
      app.add_subcommand("plan", "Predict the peak memory of one training step, and the largest batch that fits");
  parser->add_option("--arch", o->arch, "b0..b7, lite0..lite4")->capture_default_str();
  parser->add_option("--image", o->image, "input side in pixels (default: the arch's resolution)");
  parser->add_option("--height", o->height, "input height (overrides --image)");
  parser->add_option("--width", o->width, "input width (overrides --image)");
  parser->add_option("--batch", o->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--outputs", o->outputs, "classifier outputs")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--precision", o->precision, "activations: f32, f16 or bf16")->capture_default_str();
  parser->add_option("--optimizer", o->optimizer, "adamw or sgd (with momentum)")->capture_default_str();
  parser->add_option("--checkpoint", o->checkpoint, "none, every, every:K, blocks:I,J,... or auto")
      ->capture_default_str();
  parser->add_option("--memory,--memory-limit,--memory_limit", o->memory,
                     "budget: 4GiB, 3.5GB, 4096MiB, bytes (the --memory-limit of train, grade, forward and bench)")
      ->capture_default_str();
  parser->add_option("--device", o->device, "whose kernel scratch to count: cuda or cpu")->capture_default_str();
  commands.push_back({parser, [o] { return run_plan(*o); }});
}

}  // namespace sg::cli
