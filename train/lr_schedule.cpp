#include "train/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "train/optimizer.h"

namespace sg::train {
namespace {

// The cosine half-wave of CosineAnnealingLR / CosineAnnealingWarmRestarts, as PyTorch writes it.
double cosine(double base_lr, double eta_min, int64_t t, int64_t period) {
  return eta_min + (base_lr - eta_min) * (1.0 + std::cos(std::numbers::pi * double(t) / double(period))) / 2.0;
}

}  // namespace

LrScheduleKind parse_lr_schedule_kind(std::string_view name) { return parse_word(kLrScheduleWords, name); }

const char* lr_schedule_name(LrScheduleKind kind) { return word_of(kLrScheduleWords, kind).data(); }

void validate(const LrScheduleConfig& c) {
  const char* name = lr_schedule_name(c.kind);
  SG_CHECK(std::isfinite(c.base_lr) && c.base_lr >= 0, "lr schedule '", name, "': base_lr ", c.base_lr,
           " must be finite and >= 0");
  SG_CHECK(c.warmup_steps >= 0, "lr schedule '", name, "': warmup_steps ", c.warmup_steps, " must be >= 0");
  SG_CHECK(c.warmup_start_factor > 0 && c.warmup_start_factor <= 1, "lr schedule '", name,
           "': warmup_start_factor ", c.warmup_start_factor, " must be in (0, 1]");
  switch (c.kind) {
    case LrScheduleKind::constant: break;
    case LrScheduleKind::cosine:
      SG_CHECK(c.total_steps > c.warmup_steps, "lr schedule 'cosine': total_steps ", c.total_steps,
               " must be greater than warmup_steps ", c.warmup_steps);
      SG_CHECK(std::isfinite(c.min_lr) && c.min_lr >= 0, "lr schedule 'cosine': min_lr ", c.min_lr,
               " must be finite and >= 0");
      break;
    case LrScheduleKind::cosine_restarts:
      SG_CHECK(c.restart_period >= 1, "lr schedule 'cosine_restarts': restart_period (T_0) ", c.restart_period,
               " must be >= 1");
      SG_CHECK(c.restart_mult >= 1, "lr schedule 'cosine_restarts': restart_mult (T_mult) ", c.restart_mult,
               " must be >= 1");
      SG_CHECK(std::isfinite(c.min_lr) && c.min_lr >= 0, "lr schedule 'cosine_restarts': min_lr ", c.min_lr,
               " must be finite and >= 0");
      break;
    case LrScheduleKind::step:
      SG_CHECK(c.step_size >= 1, "lr schedule 'step': step_size ", c.step_size, " must be >= 1");
      SG_CHECK(std::isfinite(c.gamma) && c.gamma > 0, "lr schedule 'step': gamma ", c.gamma,
               " must be finite and > 0");
      break;
  }
}

double lr_at(const LrScheduleConfig& c, int64_t step) {
  SG_CHECK(step >= 0, "lr schedule '", lr_schedule_name(c.kind), "': step ", step, " must be >= 0");
  if (step < c.warmup_steps)
    return c.base_lr * (c.warmup_start_factor + (1.0 - c.warmup_start_factor) * double(step) / double(c.warmup_steps));
  const int64_t t = step - c.warmup_steps;
  switch (c.kind) {
    case LrScheduleKind::constant: return c.base_lr;
    case LrScheduleKind::cosine: {
      const int64_t period = c.total_steps - c.warmup_steps;
      return t >= period ? c.min_lr : cosine(c.base_lr, c.min_lr, t, period);
    }
    case LrScheduleKind::cosine_restarts: {
      // Integer arithmetic for the position within the current period (PyTorch's step() form).
      if (c.restart_mult == 1) return cosine(c.base_lr, c.min_lr, t % c.restart_period, c.restart_period);
      int64_t t_cur = t, period = c.restart_period;
      while (t_cur >= period) {
        t_cur -= period;
        period *= c.restart_mult;
      }
      return cosine(c.base_lr, c.min_lr, t_cur, period);
    }
    case LrScheduleKind::step: return c.base_lr * std::pow(c.gamma, double(t / c.step_size));
  }
  return c.base_lr;
}

LrScheduler::LrScheduler(const LrScheduleConfig& config) : config_(config) { validate(config_); }

void LrScheduler::set_step(int64_t step) {
  SG_CHECK(step >= 0, "lr scheduler: step ", step, " must be >= 0");
  step_ = step;
}

void LrScheduler::apply(Optimizer& optimizer) const { optimizer.set_lr(float(lr())); }

}  // namespace sg::train
