#pragma once
// Finding the first layer that produced inf or NaN: in its output (the diagnosis of a non-finite
// loss) or in a gradient (the diagnosis of non-finite gradients).
//
// Forward: the training step re-runs the failed forward with a probe in the Context; every leaf
// module (and each block's residual sum) hands its output to probe_output() in forward order, and
// the probe remembers the first that holds inf or NaN.
// Backward: the training step re-runs the failed micro-batch's forward and backward with a
// gradient hook in the Context (Context::set_gradient_hook); every leaf module's backward hands
// probe_gradient() its parameters' gradients and then its input gradient dx, in backward order
// (closest to the loss first), so the first non-finite one names the layer where the gradient
// went bad. Granularity: leaf modules (Conv2d, BatchNorm2d, Activation, SqueezeExcite as one
// layer, the head's classifier and pooling) and each block's residual sum.
//
// Without a probe / hook each call costs one test. Each check waits for the device: a
// diagnostic, never part of a normal step.
#include <string>
#include <string_view>

#include "core/tensor.h"
#include "nn/context.h"
#include "nn/parameter.h"

namespace sg::nn {

class NonFiniteProbe {
 public:
  // Checks y, unless an earlier tensor was already found non-finite. `what` says which tensor
  // of the layer it is ("" for an output; "weight", "input", ... for gradients).
  void check(const std::string& layer, const Tensor& y, const Stream& stream, std::string_view what = {});
  bool found() const { return found_; }
  const std::string& first_layer() const { return first_layer_; }  // "" until found
  const std::string& first_what() const { return first_what_; }    // `what` of the first found
  int checked() const { return checked_; }                           // tensors examined

 private:
  bool found_ = false;
  std::string first_layer_, first_what_;
  int checked_ = 0;
};

// Hands a module's output to the Context's probe, if any.
inline void probe_output(Context& ctx, const std::string& layer, const Tensor& y) {
  if (NonFiniteProbe* probe = ctx.non_finite_probe()) probe->check(layer, y, ctx.stream());
}

// Hands one gradient a module's backward produced to the Context's gradient hook, if any:
// gradient is "input" for dx, the parameter's leaf name ("weight", "bias") for Parameter::grad.
// An undefined g (a layer without an input gradient) is skipped.
inline void probe_gradient(Context& ctx, const std::string& layer, std::string_view gradient, Tensor& g) {
  if (g.defined() && ctx.gradient_hook()) ctx.gradient_hook()(layer, gradient, g);
}

// probe_gradient for p.grad, named by p's name after "<layer>." ("weight", "conv_reduce.bias").
inline void probe_gradient(Context& ctx, const std::string& layer, Parameter& p) {
  if (!ctx.gradient_hook() || !p.grad.defined()) return;
  const bool prefixed = p.name.size() > layer.size() && p.name.compare(0, layer.size(), layer) == 0 &&
                        p.name[layer.size()] == '.';
  ctx.gradient_hook()(layer, prefixed ? std::string_view(p.name).substr(layer.size() + 1) : std::string_view(p.name),
                      p.grad);
}

}  // namespace sg::nn
