#pragma once
// The state of one forward/backward pass: the stream, whether backward will follow, the Philox
// stream for dropout and drop-connect, and what each module kept for its backward.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/stream.h"
#include "core/tensor.h"

namespace sg::nn {

class Module;
class NonFiniteProbe;  // nn/non_finite_probe.h

// What one module keeps between its forward and its backward. Only tensors backward reads;
// shapes and the RNG offset let backward rebuild the rest.
struct Saved {
  std::vector<Tensor> tensors;
  uint64_t rng_offset = 0;
  bool rng_used = false;  // a dropout / drop-connect mask was drawn at rng_offset
  uint64_t rng_count = 0; // offsets a checkpointed block drew from rng_offset on (its recompute draws the same)
  Shape input_shape;      // when backward needs only the input's shape

  static Saved of(std::vector<Tensor> tensors) {
    Saved saved;
    saved.tensors = std::move(tensors);
    return saved;
  }
};

class Context {
 public:
  // keep_for_backward: modules save what their backward needs (training step); false for
  // inference, and for the first pass of a checkpointed block (hook for gradient checkpointing:
  // the wrapper keeps the block input, rewinds rng_offset and re-runs forward with saving on).
  explicit Context(bool keep_for_backward = false, uint64_t seed = 0, uint64_t rng_offset = 0)
      : keep_for_backward_(keep_for_backward), seed_(seed), rng_offset_(rng_offset) {}
  Context(bool keep_for_backward, uint64_t seed, uint64_t rng_offset, const Stream& stream)
      : stream_(&stream), keep_for_backward_(keep_for_backward), seed_(seed), rng_offset_(rng_offset) {}

  const Stream& stream() const { return stream_ ? *stream_ : default_stream_; }
  bool keep_for_backward() const { return keep_for_backward_; }
  // Gradient checkpointing switches saving off for a block's first pass (nn/checkpointing.h).
  void set_keep_for_backward(bool keep) { keep_for_backward_ = keep; }
  // True while a checkpointed block's forward runs a second time, in backward: batch norm must
  // not update its running statistics again (the first pass did).
  bool recomputing() const { return recomputing_; }
  void set_recomputing(bool recomputing) { recomputing_ = recomputing; }
  uint64_t seed() const { return seed_; }
  // One Philox offset per call site and pass; the trainer carries rng_offset() over to the next
  // step so successive masks are independent.
  uint64_t next_rng_offset() { return rng_offset_++; }
  uint64_t rng_offset() const { return rng_offset_; }
  void set_rng_offset(uint64_t offset) { rng_offset_ = offset; }

  void save(const Module* module, Saved saved) {
    if (keep_for_backward_) saved_[module] = std::move(saved);
  }
  // Hands back (and forgets) what `module` saved; throws naming the module when nothing was.
  Saved take(const Module* module, const std::string& name) {
    auto it = saved_.find(module);
    SG_CHECK(it != saved_.end(), "backward of '", name,
             "' without a forward that kept its inputs (Context(keep_for_backward=true) and one forward per module)");
    Saved saved = std::move(it->second);
    saved_.erase(it);
    return saved;
  }
  // Diagnosis of a non-finite loss (nn/non_finite_probe.h): with a probe set, leaf modules hand
  // it their outputs. Not owned; null (the default) switches the checks off.
  void set_non_finite_probe(NonFiniteProbe* probe) { non_finite_probe_ = probe; }
  NonFiniteProbe* non_finite_probe() const { return non_finite_probe_; }
  // Diagnosis of non-finite gradients (nn/non_finite_probe.h): with a hook set, each leaf
  // module's backward hands it, in backward order, every gradient it produced: its parameters'
  // accumulated Parameter::grad ("weight", "bias", ...) and then its input gradient ("input").
  // The hook may read or (tests only: fault injection) write the tensor. Empty by default.
  using GradientHook = std::function<void(const std::string& layer, std::string_view gradient, Tensor& g)>;
  void set_gradient_hook(GradientHook hook) { gradient_hook_ = std::move(hook); }
  const GradientHook& gradient_hook() const { return gradient_hook_; }

  size_t saved_count() const { return saved_.size(); }
  // Bytes held for backward right now (for the memory plan's checks).
  size_t saved_bytes() const {
    size_t total = 0;
    for (const auto& [module, saved] : saved_)
      for (const Tensor& t : saved.tensors) total += t.defined() ? t.nbytes() : 0;
    return total;
  }

 private:
  Stream default_stream_;
  const Stream* stream_ = nullptr;
  bool keep_for_backward_ = false;
  bool recomputing_ = false;
  uint64_t seed_ = 0;
  uint64_t rng_offset_ = 0;
  std::unordered_map<const Module*, Saved> saved_;
  NonFiniteProbe* non_finite_probe_ = nullptr;
  GradientHook gradient_hook_;
};

}  // namespace sg::nn
