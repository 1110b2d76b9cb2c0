#pragma once
// Learning-rate schedules: each is a small value with lr_at(step), the rate to
// use for the step with 0-based index `step` (epochs work the same way: pass
// the epoch index). Use: optimizer.set_lr(schedule.lr_at(step)) before step().
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "metro/core/error.hpp"

namespace metro::nn {

// Multiplies the rate by gamma at each milestone (PyTorch's MultiStepLR).
// METRO: lr 1e-4, x 0.1 at half of the 200 epochs, StepDecay(1e-4, {100}).
class StepDecay {
 public:
  StepDecay(double base_lr, std::vector<std::int64_t> milestones, double gamma = 0.1)
      : base_lr_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
    if (!(base_lr >= 0) || !(gamma > 0)) throw ValueError("StepDecay: needs base_lr >= 0 and gamma > 0");
    std::sort(milestones_.begin(), milestones_.end());
  }

  // base_lr * gamma^(number of milestones <= step)
  double lr_at(std::int64_t step) const {
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
    return base_lr_ * std::pow(gamma_, static_cast<double>(passed));
  }

 private:
  double base_lr_;
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

// Ramps linearly to base_lr over the first warmup_steps steps, then holds it:
// base_lr * min(1, (step + 1) / warmup_steps), so the first step is not wasted at rate 0.
class LinearWarmup {
 public:
  LinearWarmup(double base_lr, std::int64_t warmup_steps) : base_lr_(base_lr), warmup_steps_(warmup_steps) {
    if (!(base_lr >= 0) || warmup_steps < 0) throw ValueError("LinearWarmup: needs base_lr >= 0 and warmup_steps >= 0");
  }

  double lr_at(std::int64_t step) const {
    if (step >= warmup_steps_) return base_lr_;
    return base_lr_ * static_cast<double>(std::max<std::int64_t>(step, 0) + 1) / static_cast<double>(warmup_steps_);
  }

 private:
  double base_lr_;
  std::int64_t warmup_steps_;
};

// Optional linear warmup (as LinearWarmup), then a half cosine from base_lr
// down to min_lr at total_steps; min_lr afterwards.
class CosineSchedule {
 public:
  CosineSchedule(double base_lr, std::int64_t total_steps, std::int64_t warmup_steps = 0, double min_lr = 0)
      : warmup_(base_lr, warmup_steps), base_lr_(base_lr), min_lr_(min_lr), total_steps_(total_steps), warmup_steps_(warmup_steps) {
    if (total_steps <= warmup_steps || !(min_lr >= 0) || min_lr > base_lr)
      throw ValueError("CosineSchedule: needs total_steps > warmup_steps and 0 <= min_lr <= base_lr, got total " +
                       std::to_string(total_steps) + ", warmup " + std::to_string(warmup_steps));
  }

  double lr_at(std::int64_t step) const {
    if (step < warmup_steps_) return warmup_.lr_at(step);
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_));
    return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
  }

 private:
  LinearWarmup warmup_;
  double base_lr_, min_lr_;
  std::int64_t total_steps_, warmup_steps_;
};

}  // namespace metro::nn
