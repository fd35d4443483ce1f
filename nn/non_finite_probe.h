#pragma once
// Finding the first layer whose output is not finite (the diagnosis of a NaN or inf loss).
//
// The training step re-runs the failed forward with a probe in the Context; every leaf module
// (and each block's residual sum) hands its output to probe_output() in forward order, and the
// probe remembers the first that holds inf or NaN. Without a probe probe_output() costs one
// pointer test. Each check waits for the device: a diagnostic, never part of a normal step.
#include <string>

#include "core/tensor.h"
#include "nn/context.h"

namespace sg::nn {

class NonFiniteProbe {
 public:
  // Checks y, unless an earlier output was already found non-finite.
  void check(const std::string& layer, const Tensor& y, const Stream& stream);
  bool found() const { return found_; }
  const std::string& first_layer() const { return first_layer_; }  // "" until found
  int checked() const { return checked_; }                           // outputs examined

 private:
  bool found_ = false;
  std::string first_layer_;
  int checked_ = 0;
};

// Hands a module's output to the Context's probe, if any.
inline void probe_output(Context& ctx, const std::string& layer, const Tensor& y) {
  if (NonFiniteProbe* probe = ctx.non_finite_probe()) probe->check(layer, y, ctx.stream());
}

}  // namespace sg::nn
