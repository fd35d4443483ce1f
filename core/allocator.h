#pragma once
// Per-device memory allocators that count what they hand out and can be capped.
//
// The cap is what lets a large card (or the CPU) behave like a 4 GB GTX 1050 Ti: every byte
// the allocator holds from the system, cached blocks included, counts against it. An
// allocation over the cap throws OutOfMemoryError naming what was running (AllocationScope),
// the request, the usage, the cap and what to change; so does a refusal by the system itself
// (cudaMalloc on a full card, with the card's free and total memory).
//
// What the cap covers: every Tensor of the device (Tensor storage is the only user of these
// allocators), kernel scratch tensors, and on CUDA the cuBLAS workspace (kernels/cuda/linear.cu
// takes it from here). Not covered: the CUDA context, cuBLAS's small handle state, and host
// memory outside tensors (the loader's batch buffers, pinned or not, std::vector scratch).
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "core/device.h"

namespace sg {

struct MemoryStats {
  size_t in_use = 0;       // bytes in live tensors
  size_t peak_in_use = 0;  // highest in_use since the last reset_peak()
  size_t reserved = 0;     // bytes held from the system (in_use + cached); what the cap limits
  size_t peak_reserved = 0;
  size_t limit = 0;  // 0: no cap
  size_t allocations = 0;
  size_t cache_hits = 0;
};

class Allocator {
 public:
  explicit Allocator(Device device) : device_(device) {}
  virtual ~Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Returns at least `bytes` bytes aligned to 256; `what` names the requester in errors.
  void* allocate(size_t bytes, const char* what = "tensor");
  void deallocate(void* ptr, size_t bytes) noexcept;

  MemoryStats stats() const;
  void set_limit(size_t bytes);  // 0 removes the cap
  void reset_peak();
  // Returns cached blocks to the system (both allocators keep freed blocks for reuse).
  void release_cached();
  Device device() const { return device_; }

 protected:
  virtual void* system_allocate(size_t bytes) = 0;
  virtual void system_free(void* ptr, size_t bytes) noexcept = 0;
  virtual bool caches() const = 0;

 private:
  static size_t round_size(size_t bytes);
  void release_cached_locked();

  Device device_;
  mutable std::mutex mutex_;
  MemoryStats stats_;
  std::multimap<size_t, void*> free_blocks_;  // cached blocks by rounded size
};

// The allocator of a device. One per device for the whole process, like the device itself.
Allocator& allocator_for(Device device);

// What this thread is doing, for out-of-memory messages: a label pushed for the scope's lifetime,
// e.g. AllocationScope step("training step 12 (epoch 2 of 3, batch 3/6)"). Scopes nest (the
// message joins the open labels, outermost first: "training step 12 (...) > forward") and are per
// thread (a loader worker's scope never shows in the training thread's message). Cheap: one string
// and two pointer writes; the labels are only read when an allocation fails.
// `advice` replaces the message's default advice (gradient checkpointing, a smaller batch, a
// larger --memory-limit) for the allocations inside this scope; the innermost non-empty one wins.
class AllocationScope {
 public:
  explicit AllocationScope(std::string label, std::string advice = {});
  ~AllocationScope();
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;

  // A new label for the same scope (e.g. the phases of one step: "forward", then "backward"); the
  // second form also replaces the advice.
  void relabel(std::string label) { label_ = std::move(label); }
  void relabel(std::string label, std::string advice) {
    label_ = std::move(label);
    advice_ = std::move(advice);
  }

  // This thread's open labels, outermost first, joined by " > "; "" when none is open.
  static std::string current();
  // The advice of this thread's innermost scope that has one; "" when none has.
  static std::string current_advice();

 private:
  std::string label_, advice_;
  AllocationScope* parent_;
};

// The advice of an out-of-memory message when no scope gives its own.
inline constexpr const char* kDefaultOutOfMemoryAdvice =
    "use gradient checkpointing when training (--checkpointing every, or auto with --memory-limit; config key "
    "checkpointing), a smaller --batch, or a larger --memory-limit";

// Caps a device's allocator for the object's lifetime and puts the previous cap back after (the
// allocators are process-wide: a library caller's cap must not outlive its run). 0: no cap.
class ScopedMemoryLimit {
 public:
  ScopedMemoryLimit(Device device, size_t bytes);
  ~ScopedMemoryLimit();
  ScopedMemoryLimit(const ScopedMemoryLimit&) = delete;
  ScopedMemoryLimit& operator=(const ScopedMemoryLimit&) = delete;

 private:
  Allocator& allocator_;
  size_t previous_;
};

// One line for run logs, e.g. "memory on cpu: limit 512.00 MiB (--memory-limit)" or
// "memory on cuda:0: no limit".
std::string memory_limit_text(Device device, size_t limit);
// "memory on cpu: peak 301.50 MiB reserved (280.00 MiB in tensors) of the 512.00 MiB limit" (or
// "..., no limit"); from the allocator's stats since its last reset_peak().
std::string memory_peak_text(Device device, const MemoryStats& stats);

// Parses "4GiB", "512MiB", "1.5GB", "1000000" into bytes; errors name the text.
size_t parse_bytes(const std::string& text);
std::string format_bytes(size_t bytes);

}  // namespace sg
