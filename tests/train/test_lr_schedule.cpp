// Learning-rate schedules: PyTorch golden sequences (CosineAnnealingWarmRestarts, StepLR,
// CosineAnnealingLR, LinearLR + CosineAnnealingLR via SequentialLR), the shape of each schedule
// at its boundaries, the scheduler's saved position, and bad configurations.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "nn/parameter.h"
#include "tests/support/testing.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"

namespace sg::train {
namespace {

// The golden rates are stored in f32 (relative rounding 6e-8); the schedules are double maths.
constexpr testing::Tolerance kLrTolerance{1e-9, 1e-6};

std::vector<double> sequence(const LrScheduleConfig& config, int64_t steps) {
  std::vector<double> lrs;
  for (int64_t s = 0; s < steps; ++s) lrs.push_back(lr_at(config, s));
  return lrs;
}

LrScheduleConfig config_of(LrScheduleKind kind, double base_lr) {
  LrScheduleConfig c;
  c.kind = kind;
  c.base_lr = base_lr;
  return c;
}

// The configurations of tests/golden/golden_schedule.py (base LR 0.1, 50 steps).
TEST(LrSchedule, MatchesPyTorchGolden) {
  const testing::GoldenFile golden("schedule");
  const int64_t steps = 50;

  LrScheduleConfig restarts_10 = config_of(LrScheduleKind::cosine_restarts, 0.1);
  restarts_10.restart_period = 10;
  restarts_10.restart_mult = 1;
  restarts_10.min_lr = 1e-3;
  LrScheduleConfig restarts_5x2 = restarts_10;
  restarts_5x2.restart_period = 5;
  restarts_5x2.restart_mult = 2;
  LrScheduleConfig step = config_of(LrScheduleKind::step, 0.1);
  step.step_size = 7;
  step.gamma = 0.5;
  LrScheduleConfig cosine = config_of(LrScheduleKind::cosine, 0.1);
  cosine.total_steps = 50;
  cosine.min_lr = 1e-4;
  LrScheduleConfig warmup_cosine = cosine;
  warmup_cosine.warmup_steps = 5;
  warmup_cosine.warmup_start_factor = 0.1;

  const std::pair<const char*, LrScheduleConfig> cases[] = {{"warm_restarts_t0_10_mult_1", restarts_10},
                                                            {"warm_restarts_t0_5_mult_2", restarts_5x2},
                                                            {"step_7_gamma_0.5", step},
                                                            {"cosine_t50", cosine},
                                                            {"warmup_5_cosine_t50", warmup_cosine}};
  for (const auto& [name, config] : cases) {
    SCOPED_TRACE(name);
    validate(config);
    EXPECT_TRUE(testing::all_close(sequence(config, steps), golden.doubles(std::string("lr/") + name), kLrTolerance));
  }
}

TEST(LrSchedule, WarmUpRampsLinearlyToTheBaseRate) {
  for (LrScheduleKind kind : {LrScheduleKind::constant, LrScheduleKind::cosine, LrScheduleKind::cosine_restarts,
                              LrScheduleKind::step}) {
    SCOPED_TRACE(lr_schedule_name(kind));
    LrScheduleConfig c = config_of(kind, 0.4);
    c.warmup_steps = 4;
    c.warmup_start_factor = 0.25;
    c.total_steps = 20;
    validate(c);
    EXPECT_DOUBLE_EQ(lr_at(c, 0), 0.1);
    EXPECT_DOUBLE_EQ(lr_at(c, 2), 0.25);
    EXPECT_DOUBLE_EQ(lr_at(c, 4), 0.4);  // every schedule starts at the base rate after warm-up
  }
}

TEST(LrSchedule, CosineHoldsMinLrAfterTotalSteps) {
  LrScheduleConfig c = config_of(LrScheduleKind::cosine, 1.0);
  c.warmup_steps = 2;
  c.total_steps = 12;
  c.min_lr = 0.01;
  EXPECT_NEAR(lr_at(c, 7), 0.505, 1e-12);  // half-way: the mean of base and min
  EXPECT_DOUBLE_EQ(lr_at(c, 12), 0.01);
  EXPECT_DOUBLE_EQ(lr_at(c, 1000), 0.01);
  for (int64_t s = 3; s < 12; ++s) EXPECT_LT(lr_at(c, s), lr_at(c, s - 1)) << "step " << s;
}

TEST(LrSchedule, WarmRestartsRestartAtGrowingPeriods) {
  LrScheduleConfig c = config_of(LrScheduleKind::cosine_restarts, 0.5);
  c.restart_period = 3;
  c.restart_mult = 3;
  // Periods 3, 9, 27: restarts at steps 0, 3, 12, 39.
  for (int64_t restart : {0, 3, 12, 39}) EXPECT_DOUBLE_EQ(lr_at(c, restart), 0.5) << "step " << restart;
  EXPECT_LT(lr_at(c, 11), lr_at(c, 4));
  EXPECT_NEAR(lr_at(c, 12 + 27 / 2), 0.25 * (1 + std::cos(std::numbers::pi * 13 / 27)), 1e-12);
}

TEST(LrSchedule, StepDecaysByGammaEveryStepSize) {
  LrScheduleConfig c = config_of(LrScheduleKind::step, 1.0);
  c.step_size = 3;
  c.gamma = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(c, 2), 1.0);
  EXPECT_NEAR(lr_at(c, 3), 0.1, 1e-15);
  EXPECT_NEAR(lr_at(c, 8), 0.01, 1e-15);
  EXPECT_DOUBLE_EQ(lr_at(config_of(LrScheduleKind::constant, 0.3), 12345), 0.3);
}

TEST(LrSchedule, SchedulerPositionRestoresAndSetsTheOptimizerRate) {
  LrScheduleConfig c = config_of(LrScheduleKind::cosine, 0.2);
  c.warmup_steps = 3;
  c.total_steps = 30;
  LrScheduler running(c);
  for (int i = 0; i < 11; ++i) running.advance();
  LrScheduler restored(c);
  restored.set_step(running.step());
  EXPECT_EQ(restored.step(), 11);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(restored.lr(), running.lr());
    EXPECT_EQ(running.lr(), lr_at(c, 11 + i));
    restored.advance();
    running.advance();
  }
  nn::Parameter p{"w", Tensor::zeros({2}, DType::f32), Tensor::zeros({2}, DType::f32)};
  Sgd sgd({&p}, SgdOptions{});
  running.apply(sgd);
  EXPECT_EQ(sgd.lr(), float(running.lr()));
}

TEST(LrSchedule, RejectsUnknownNamesAndBadConfigs) {
  EXPECT_EQ(parse_lr_schedule_kind("cosine_restarts"), LrScheduleKind::cosine_restarts);
  try {
    parse_lr_schedule_kind("cosin");
    ADD_FAILURE() << "no error for an unknown schedule";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown lr schedule 'cosin' (expected constant, cosine, cosine_restarts or step)"),
              std::string::npos)
        << e.what();
  }
  LrScheduleConfig cosine = config_of(LrScheduleKind::cosine, 0.1);
  cosine.warmup_steps = 10;
  cosine.total_steps = 10;
  try {
    LrScheduler scheduler(cosine);
    ADD_FAILURE() << "no error for total_steps <= warmup_steps";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr schedule 'cosine': total_steps 10 must be greater than warmup_steps 10"),
              std::string::npos)
        << e.what();
  }
  LrScheduleConfig restarts = config_of(LrScheduleKind::cosine_restarts, 0.1);
  restarts.restart_period = 0;
  EXPECT_THROW(validate(restarts), Error);
  LrScheduleConfig step = config_of(LrScheduleKind::step, 0.1);
  step.step_size = 0;
  EXPECT_THROW(validate(step), Error);
  LrScheduleConfig warmup = config_of(LrScheduleKind::constant, 0.1);
  warmup.warmup_start_factor = 0;
  EXPECT_THROW(validate(warmup), Error);
  EXPECT_THROW(validate(config_of(LrScheduleKind::constant, -1.0)), Error);
  EXPECT_THROW(lr_at(config_of(LrScheduleKind::constant, 0.1), -1), Error);
  LrScheduler scheduler(config_of(LrScheduleKind::constant, 0.1));
  EXPECT_THROW(scheduler.set_step(-2), Error);
}

}  // namespace
}  // namespace sg::train
