// slidegrade bench: images per second and peak memory of EfficientNet inference or training steps
// on synthetic data, on the CPU or a GPU. benchmarks/compare_b0.sh runs it beside PyTorch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"
#include "nn/precision.h"
#include "train/option_validators.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace sg::cli {

namespace {

struct BenchOptions {
  std::string arch = "b0";
  int64_t image = 224, batch = 8, outputs = 1000;
  std::string mode = "infer";
  std::string precision = "f32";
  std::string device = "auto";
  std::string checkpoint = "none";
  std::string memory_limit;  // "": no cap
  int64_t warmup = 2, iterations = 10;
  uint64_t seed = 1;
};

Tensor random_input(const BenchOptions& o, Device device, uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(size_t(o.batch * o.image * o.image * 3));
  for (float& v : values) v = normal(engine);
  return Tensor::from_floats(values, Shape{o.batch, o.image, o.image, 3}).to(device);
}

Tensor random_targets(const BenchOptions& o, Device device, uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::vector<float> labels(size_t(o.batch));
  for (float& v : labels) v = float(engine() % uint64_t(o.outputs));
  return Tensor::from_floats(labels, Shape{o.batch}, DType::i32).to(device);
}

// One timed unit of work: an inference forward (eval mode), or a training step (train mode:
// forward, cross-entropy, backward, AdamW, zero_grad; f16 with dynamic loss scaling) through
// train::TrainStep, the trainer's own step.
class Workload {
 public:
  Workload(const BenchOptions& o, Device device)
      : options_(o), device_(device), model_(make_config(o), device), input_(random_input(o, device, o.seed)),
        targets_(random_targets(o, device, o.seed + 1)) {
    model_.set_precision(nn::parse_precision(o.precision));
    model_.set_checkpointing(nn::parse_checkpoint_policy(o.checkpoint));
    model_.set_training(o.mode == "train");
    if (o.mode == "train") {
      optimizer_ = std::make_unique<train::AdamW>(model_.parameters(), train::AdamWOptions{});
      train::TrainStepOptions step_options;
      step_options.seed = o.seed;
      step_ = std::make_unique<train::TrainStep>(model_, *optimizer_, step_options);
    }
  }

  void run_once() {
    if (step_) {
      const train::Batch batch{input_, targets_};
      step_->micro_batch(batch, stream_);
    } else {
      nn::Context ctx(false, options_.seed, 0, stream_);
      const Tensor logits = model_.forward(ctx, input_);
    }
    stream_.synchronize(device_);
  }

 private:
  static nn::EfficientNetConfig make_config(const BenchOptions& o) {
    nn::EfficientNetConfig c = nn::efficientnet_config(o.arch);
    c.outputs = o.outputs;
    c.seed = o.seed;
    return c;
  }
  BenchOptions options_;
  Device device_;
  Stream stream_;
  nn::EfficientNet model_;
  Tensor input_, targets_;
  std::unique_ptr<train::Optimizer> optimizer_;
  std::unique_ptr<train::TrainStep> step_;
};

int run_bench(const BenchOptions& o) {
  SG_CHECK(o.mode == "infer" || o.mode == "train", "bench: --mode '", o.mode, "' (expected infer or train)");
  SG_CHECK(o.checkpoint != "auto", "bench: --checkpoint auto needs a memory budget: see `slidegrade plan`, then pass "
           "the policy it prints (none, every, every:K, blocks:I,J,...)");
  const Device device = parse_device(o.device);
  Allocator& allocator = allocator_for(device);
  const ScopedMemoryLimit memory_limit(device, o.memory_limit.empty() ? 0 : parse_bytes(o.memory_limit));
  const std::string advice =
      o.mode == "train" ? "use --checkpoint every, a smaller --batch, or raise --memory-limit"
                        : "use a smaller --batch, or raise --memory-limit";
  AllocationScope scope("bench: building the model", advice);
  Workload workload(o, device);
  for (int64_t i = 0; i < o.warmup; ++i) {
    scope.relabel(detail::concat("bench: warm-up iteration ", i + 1, " of ", o.warmup));
    workload.run_once();
  }
  allocator.reset_peak();
  std::vector<double> seconds;
  for (int64_t i = 0; i < o.iterations; ++i) {
    scope.relabel(detail::concat("bench: iteration ", i + 1, " of ", o.iterations));
    const auto start = std::chrono::steady_clock::now();
    workload.run_once();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2], best = seconds.front();
  const MemoryStats stats = allocator.stats();
  std::printf("efficientnet-%s %s, %lldx%lld, batch %lld, %s on %s, checkpointing %s (%lld iterations after %lld "
              "warm-up)\n",
              o.arch.c_str(), o.mode.c_str(), (long long)o.image, (long long)o.image, (long long)o.batch,
              o.precision.c_str(), device.str().c_str(), o.checkpoint.c_str(), (long long)o.iterations,
              (long long)o.warmup);
  std::printf("time per batch: median %.2f ms, best %.2f ms\n", median * 1e3, best * 1e3);
  std::printf("images/s: %.2f (median), %.2f (best)\n", double(o.batch) / median, double(o.batch) / best);
  std::printf("peak memory: %.1f MiB in tensors, %.1f MiB reserved (%s allocator)\n",
              double(stats.peak_in_use) / (1 << 20), double(stats.peak_reserved) / (1 << 20), device.str().c_str());
  if (stats.limit) std::printf("%s\n", memory_peak_text(device, stats).c_str());
  rusage usage{};
  SG_CHECK(getrusage(RUSAGE_SELF, &usage) == 0, "bench: getrusage failed");
  std::printf("peak process RSS: %.1f MiB\n", double(usage.ru_maxrss) / 1024.0);  // ru_maxrss is in KiB on Linux
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* parser = app.add_subcommand("bench", "Images per second and peak memory of inference or training steps");
  parser->add_option("--arch", o->arch, "EfficientNet variant")->capture_default_str()->transform(train::arch_choice());
  parser->add_option("--image", o->image, "input side in pixels")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--batch", o->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--outputs", o->outputs, "classifier outputs")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--mode", o->mode, "infer (eval forward) or train (forward, cross-entropy, backward, AdamW)")
      ->capture_default_str()
      ->check(CLI::IsMember({"infer", "train"}));
  parser->add_option("--precision", o->precision, "compute precision")
      ->capture_default_str()
      ->transform(train::word_choice(nn::kPrecisionWords));
  parser->add_option("--device", o->device, "where to run; auto: the GPU if there is one")
      ->capture_default_str()
      ->check(train::device_choice());
  parser->add_option("--checkpoint", o->checkpoint, "gradient checkpointing (auto needs a budget: see `plan`)")
      ->capture_default_str()
      ->check(train::checkpoint_choice());
  parser->add_option("--memory-limit,--memory_limit", o->memory_limit,
                     "cap the device's allocator (4GiB, 512MiB, 2GB); default: no cap")
      ->check(train::memory_limit_choice());
  parser->add_option("--warmup", o->warmup, "untimed iterations first")->capture_default_str()->check(CLI::NonNegativeNumber);
  parser->add_option("--iterations", o->iterations, "timed iterations")->capture_default_str()->check(CLI::PositiveNumber);
  parser->add_option("--seed", o->seed, "weights and data")->capture_default_str();
  commands.push_back({parser, [o] { return run_bench(*o); }});
}

}  // namespace sg::cli
