#pragma once
// The state of one forward/backward pass: the stream, whether backward will follow, the Philox
// stream for dropout and drop-connect, and what each module kept for its backward.
#include <any>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/meta_device.h"
#include "core/stream.h"
#include "core/tensor.h"

namespace sg::nn {

class Module;
class NonFiniteProbe;  // nn/non_finite_probe.h

// What one module keeps between its forward and its backward. Each module declares its own
// struct (a nested `Saved` in its header) that names every tensor and value its backward reads:
// only tensors backward reads; shapes and the RNG offset let backward rebuild the rest. tensors()
// lists the tensors it holds, for saved_bytes().
template <class State>
concept SavedForBackward = std::copy_constructible<State> && requires(const State& state) {
  { state.tensors() } -> std::same_as<std::vector<const Tensor*>>;
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

  // Keeps `state` for `module`'s backward (nothing when keep_for_backward() is off).
  template <SavedForBackward State>
  void save(const Module* module, State state) {
    if (!keep_for_backward_) return;
    size_t bytes = 0;
    std::vector<Tensor> meta_tensors;
    for (const Tensor* t : state.tensors()) {
      bytes += t->defined() ? t->nbytes() : 0;
      if (t->defined() && t->device().is_meta()) meta_tensors.push_back(*t);
    }
    saved_[module] = Entry{std::move(state), bytes, MetaMarks(std::move(meta_tensors))};
  }
  // Hands back (and forgets) what `module` saved; throws naming the module when nothing was, or
  // when what was saved is another struct (a forward and a backward of different modules).
  template <SavedForBackward State>
  State take(const Module* module, const std::string& name) {
    auto it = saved_.find(module);
    SG_CHECK(it != saved_.end(), "backward of '", name,
             "' without a forward that kept its inputs (Context(keep_for_backward=true) and one forward per module)");
    State* state = std::any_cast<State>(&it->second.state);
    SG_CHECK(state != nullptr, "backward of '", name, "' found another module's saved state (",
             it->second.state.type().name(), " instead of ", typeid(State).name(), ")");
    State taken = std::move(*state);
    saved_.erase(it);
    return taken;
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
    for (const auto& [module, entry] : saved_) total += entry.bytes;
    return total;
  }

 private:
  Stream default_stream_;
  const Stream* stream_ = nullptr;
  bool keep_for_backward_ = false;
  bool recomputing_ = false;
  uint64_t seed_ = 0;
  uint64_t rng_offset_ = 0;
  // Meta tensors held for backward, told to the meta session (core/meta_device.h) for as long as
  // they are held, so that the memory plan can say what was saved at its peak. Empty off meta.
  class MetaMarks {
   public:
    MetaMarks() = default;
    explicit MetaMarks(std::vector<Tensor> tensors) : tensors_(std::move(tensors)) { mark(+1); }
    MetaMarks(MetaMarks&& other) noexcept : tensors_(std::move(other.tensors_)) { other.tensors_.clear(); }
    MetaMarks& operator=(MetaMarks&& other) noexcept {
      if (this != &other) {
        mark(-1);
        tensors_ = std::move(other.tensors_);
        other.tensors_.clear();
      }
      return *this;
    }
    ~MetaMarks() { mark(-1); }

   private:
    void mark(int delta) noexcept {
      if (tensors_.empty()) return;
      if (meta::Session* session = meta::Session::active())
        for (const Tensor& t : tensors_) session->mark_saved(t, delta);
    }
    std::vector<Tensor> tensors_;
  };
  // One module's saved state (its own struct), the bytes of its tensors and its meta marks.
  struct Entry {
    std::any state;
    size_t bytes = 0;
    MetaMarks meta_marks;
  };
  std::unordered_map<const Module*, Entry> saved_;
  NonFiniteProbe* non_finite_probe_ = nullptr;
  GradientHook gradient_hook_;
};

}  // namespace sg::nn
