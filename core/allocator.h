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
//
// Streams (CUDA). Both allocators keep freed blocks for reuse. A CUDA block is freed when the
// host drops its last Tensor, usually while kernels that use it are still queued; reusing it for
// work on the same stream is safe (stream order), but work on another stream could run first and
// overwrite what those kernels still read. So every block belongs to a stream, the one it was
// allocated for (core/stream.h says how an allocation learns it: an explicit stream, else the
// thread's StreamScope, else the default stream), and a tensor used on further streams says so
// with Tensor::record_stream (as DeviceBatch::wait does for the loader's copies). When a block is
// freed, an event from a pool is recorded on each of its streams; when it is handed out again,
// the new stream waits (on the device, cudaStreamWaitEvent) for the events of the other streams.
// Reuse on the block's own stream waits for nothing. Nothing synchronises the host.
// To stay cheap, a process that has only ever used one stream on a device records no events:
// the first allocation for a second stream that takes a block freed on the first records the
// event then (which waits for everything queued on the first stream so far, a superset of the
// work up to the free). A stream that no longer exists has finished its work (~Stream
// synchronises) and needs no event. CPU blocks have no streams.
#include <cstddef>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/runtime.h"
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
  size_t stream_waits = 0;  // cache hits that made the new stream wait for another stream's events
};

class Allocator {
 public:
  explicit Allocator(Device device) : device_(device) {}
  virtual ~Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Returns at least `bytes` bytes aligned to 256; `what` names the requester in errors.
  // `stream`: the stream the block will be used on first (CUDA; nullptr: the default stream). A
  // cached block of another stream is made safe for it first ("Streams" above).
  void* allocate(size_t bytes, const char* what = "tensor", cuda::StreamHandle stream = nullptr);
  // `stream`: the one given to allocate; `also_used_on`: every other stream that used the block
  // (Tensor::record_stream). If an event cannot be recorded, the block goes back to the system
  // (cudaFree waits for the device) rather than into the cache.
  void deallocate(void* ptr, size_t bytes, cuda::StreamHandle stream = nullptr,
                  std::span<const cuda::StreamHandle> also_used_on = {}) noexcept;

  MemoryStats stats() const;
  void set_limit(size_t bytes);  // 0 removes the cap
  void reset_peak();
  // Returns cached blocks to the system (both allocators keep freed blocks for reuse).
  void release_cached();
  Device device() const { return device_; }

  // Blocks rounded as allocate rounds them (tests of the cache use it to pick sizes).
  static size_t round_size(size_t bytes);

 protected:
  virtual void* system_allocate(size_t bytes) = 0;
  virtual void system_free(void* ptr, size_t bytes) noexcept = 0;
  virtual bool caches() const = 0;

  // Stream ordering of cached blocks; only called when tracks_streams(). The CUDA allocator's
  // use the runtime; tests replace them to check the bookkeeping without a GPU.
  virtual bool tracks_streams() const { return false; }
  virtual cuda::EventHandle create_event() { return nullptr; }
  virtual void destroy_event(cuda::EventHandle /*event*/) noexcept {}
  // Records `event` on `stream` and returns true; returns false, recording nothing, when the
  // stream no longer exists (its work is finished). Throws when recording fails.
  virtual bool record_event(cuda::EventHandle /*event*/, cuda::StreamHandle /*stream*/) { return false; }
  // Makes `stream` wait on the device for `event`; throws when that fails.
  virtual void wait_event(cuda::StreamHandle /*stream*/, cuda::EventHandle /*event*/) {}
  // For the derived destructors (after release_cached): destroys the pooled events.
  void destroy_pooled_events() noexcept;

 private:
  // An event recorded on one stream of a freed block.
  struct StreamEvent {
    cuda::StreamHandle stream;
    cuda::EventHandle event;
  };
  struct FreeBlock {
    void* ptr = nullptr;
    cuda::StreamHandle stream = nullptr;  // the stream it was allocated for
    // One event per stream that used it, recorded at the free; empty when it was freed while the
    // allocator knew a single stream (or when none of its streams exists any more).
    std::vector<StreamEvent> events;
  };

  void release_cached_locked();
  // Orders `stream` after the other streams' uses of `block` and gives its events back.
  void order_reuse_locked(FreeBlock& block, cuda::StreamHandle stream);
  cuda::EventHandle take_event_locked();
  void give_back_event_locked(cuda::EventHandle event) noexcept;
  void give_back_events_locked(std::vector<StreamEvent>& events) noexcept;
  void note_stream_locked(cuda::StreamHandle stream);

  Device device_;
  mutable std::mutex mutex_;
  MemoryStats stats_;
  std::multimap<size_t, FreeBlock> free_blocks_;  // cached blocks by rounded size
  std::vector<cuda::EventHandle> idle_events_;    // recorded and waited on, free to record again
  bool seen_stream_ = false;                      // a block was allocated (for first_stream_)
  cuda::StreamHandle first_stream_ = nullptr;
  bool several_streams_ = false;  // a second stream was seen: record events at every free
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
