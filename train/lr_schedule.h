#pragma once
// Learning-rate schedules as pure functions of the optimizer step, PyTorch 1.13 semantics:
//
//   warm-up (any kind, warmup_steps W > 0): lr = base * (f + (1 - f) * s / W) for s < W, the
//     linear ramp of LinearLR(start_factor f); from s = W the schedule below runs on t = s - W
//     (SequentialLR([LinearLR, ...], milestones=[W])).
//   constant:        base
//   cosine:          min_lr + (base - min_lr) * (1 + cos(pi * t / T)) / 2, T = total_steps - W
//                    (CosineAnnealingLR(T_max=T, eta_min=min_lr)); min_lr from t = T on
//   cosine_restarts: the same over periods T_0, T_0 * T_mult, T_0 * T_mult^2, ...
//                    (CosineAnnealingWarmRestarts(T_0, T_mult, eta_min=min_lr))
//   step:            base * gamma^floor(t / step_size) (StepLR)
//
// `step` counts optimizer steps taken: lr_at(config, s) is the rate for step s (0-based), the
// value PyTorch's param_groups[0]["lr"] holds before the s-th optimizer.step(). The only state
// is that count (LrScheduler::step), saved with a checkpoint.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/option_words.h"

namespace sg::train {

class Optimizer;

enum class LrScheduleKind { constant, cosine, cosine_restarts, step };

// The schedule words: constant, cosine, cosine_restarts, step; anything else throws, listing these.
inline constexpr OptionWord<LrScheduleKind> kLrScheduleWordList[] = {
    {LrScheduleKind::constant, "constant"},
    {LrScheduleKind::cosine, "cosine"},
    {LrScheduleKind::cosine_restarts, "cosine_restarts"},
    {LrScheduleKind::step, "step"},
};
inline constexpr OptionWords<LrScheduleKind> kLrScheduleWords{"lr schedule", kLrScheduleWordList};
LrScheduleKind parse_lr_schedule_kind(std::string_view name);
const char* lr_schedule_name(LrScheduleKind kind);

struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::constant;
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;          // W
  double warmup_start_factor = 0.1;  // f in (0, 1]
  int64_t total_steps = 0;           // cosine: the step at which min_lr is reached (> W)
  double min_lr = 0.0;               // cosine, cosine_restarts (eta_min)
  int64_t restart_period = 10;       // cosine_restarts: T_0 >= 1
  int64_t restart_mult = 1;          // cosine_restarts: T_mult >= 1
  int64_t step_size = 30;            // step: >= 1
  double gamma = 0.1;                // step: > 0
};

// Throws sg::Error naming the schedule and the bad field.
void validate(const LrScheduleConfig& config);
// The rate for optimizer step `step` (>= 0); the config must be valid.
double lr_at(const LrScheduleConfig& config, int64_t step);

// A schedule with its position. Typical loop: scheduler.apply(optimizer); optimizer.step();
// scheduler.advance();
class LrScheduler {
 public:
  explicit LrScheduler(const LrScheduleConfig& config);  // validates
  const LrScheduleConfig& config() const { return config_; }

  int64_t step() const { return step_; }
  void set_step(int64_t step);  // restore from a checkpoint; >= 0
  double lr() const { return lr_at(config_, step_); }
  void advance() { ++step_; }
  // optimizer.set_lr(lr()).
  void apply(Optimizer& optimizer) const;

 private:
  LrScheduleConfig config_;
  int64_t step_ = 0;
};

}  // namespace sg::train
