#include "core/allocator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "core/meta_device.h"
#include "core/stream.h"

namespace sg {
namespace {

constexpr size_t kAlignment = 256;

class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() : Allocator(Device::cpu()) {}
  ~CpuAllocator() override { release_cached(); }  // CPU blocks have no streams (tracks_streams() is false)

 protected:
  void* system_allocate(size_t bytes) override {
    void* ptr = std::aligned_alloc(kAlignment, bytes);
    if (!ptr) throw OutOfMemoryError(detail::concat("the system refused it (aligned_alloc of ", bytes, " bytes)"));
    return ptr;
  }
  void system_free(void* ptr, size_t) noexcept override { std::free(ptr); }
  // Cached like the GPU's: a training step frees and asks again for the same sizes, and fresh
  // large blocks cost a page fault per 4 KiB on first touch.
  bool caches() const override { return true; }
};

// cudaMalloc and cudaFree synchronise the device and are slow, so freed blocks are kept and
// reused for requests of the same rounded size, on the stream rules of core/allocator.h.
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int index) : Allocator(Device::cuda(index)) {}
  ~CudaAllocator() override {
    release_cached();
    destroy_pooled_events();
  }

 protected:
  void* system_allocate(size_t bytes) override { return cuda::device_malloc(bytes, device().index); }
  void system_free(void* ptr, size_t) noexcept override { cuda::device_free(ptr, device().index); }
  bool caches() const override { return true; }

  bool tracks_streams() const override { return true; }
  // Without timing: recording and waiting are cheaper.
  cuda::EventHandle create_event() override { return cuda::event_create(device().index, /*timing=*/false); }
  void destroy_event(cuda::EventHandle event) noexcept override { cuda::event_destroy(event); }
  bool record_event(cuda::EventHandle event, cuda::StreamHandle stream) override {
    // Held while recording: the stream cannot be destroyed in between.
    const detail::LiveStreamsLock live;
    if (!live.exists(stream)) return false;
    cuda::event_record_on(device().index, event, stream);
    return true;
  }
  void wait_event(cuda::StreamHandle stream, cuda::EventHandle event) override {
    cuda::stream_wait_event_on(device().index, stream, event);
  }
};

}  // namespace

size_t Allocator::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t granule = bytes < (size_t(1) << 20) ? 512 : (size_t(2) << 20);
  return (bytes + granule - 1) / granule * granule;
}

namespace {

thread_local AllocationScope* innermost_scope = nullptr;

// The message of an out-of-memory error. `refusal` is empty when the cap refused; otherwise it
// says how the system refused (cudaMalloc, with the card's free and total memory).
OutOfMemoryError out_of_memory(OutOfMemoryInfo info, const std::string& refusal) {
  std::string advice = AllocationScope::current_advice();
  if (advice.empty()) advice = kDefaultOutOfMemoryAdvice;
  std::string message = detail::concat("out of memory on ", info.device);
  if (!info.scope.empty()) message += " during " + info.scope;
  message += detail::concat(": ", info.what, " needs ", format_bytes(info.requested), " (", info.requested, " bytes)");
  if (refusal.empty()) {
    message += detail::concat(", ", format_bytes(info.in_use), " in use (", format_bytes(info.reserved),
                              " reserved), limit ", format_bytes(info.limit), " (--memory-limit)");
  } else {
    message += detail::concat(" but ", refusal, "; slidegrade holds ", format_bytes(info.in_use), " in use (",
                              format_bytes(info.reserved), " reserved), ",
                              info.limit ? "limit " + format_bytes(info.limit) + " (--memory-limit)"
                                         : std::string("no --memory-limit set"));
  }
  message += ". To fit: " + advice;
  return OutOfMemoryError(message, std::move(info));
}

}  // namespace

AllocationScope::AllocationScope(std::string label, std::string advice)
    : label_(std::move(label)), advice_(std::move(advice)), parent_(innermost_scope) {
  innermost_scope = this;
}

AllocationScope::~AllocationScope() { innermost_scope = parent_; }

std::string AllocationScope::current() {
  std::vector<const std::string*> labels;  // innermost first
  for (const AllocationScope* scope = innermost_scope; scope; scope = scope->parent_)
    if (!scope->label_.empty()) labels.push_back(&scope->label_);
  std::string text;
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) text += (text.empty() ? "" : " > ") + **it;
  return text;
}

std::string AllocationScope::current_advice() {
  for (const AllocationScope* scope = innermost_scope; scope; scope = scope->parent_)
    if (!scope->advice_.empty()) return scope->advice_;
  return {};
}

void Allocator::note_stream_locked(cuda::StreamHandle stream) {
  if (!seen_stream_) {
    seen_stream_ = true;
    first_stream_ = stream;
  } else if (stream != first_stream_) {
    several_streams_ = true;
  }
}

cuda::EventHandle Allocator::take_event_locked() {
  if (idle_events_.empty()) return create_event();
  cuda::EventHandle event = idle_events_.back();
  idle_events_.pop_back();
  return event;
}

void Allocator::give_back_event_locked(cuda::EventHandle event) noexcept {
  try {
    idle_events_.push_back(event);
  } catch (...) {  // no room in the pool: the event goes
    destroy_event(event);
  }
}

void Allocator::give_back_events_locked(std::vector<StreamEvent>& events) noexcept {
  for (const StreamEvent& e : events) give_back_event_locked(e.event);
  events.clear();
}

void Allocator::destroy_pooled_events() noexcept {
  std::lock_guard lock(mutex_);
  for (cuda::EventHandle event : idle_events_) destroy_event(event);
  idle_events_.clear();
}

void Allocator::order_reuse_locked(FreeBlock& block, cuda::StreamHandle stream) {
  bool waited = false;
  if (block.events.empty()) {
    // Freed while only one stream was known: no event was recorded then. One recorded now on the
    // block's stream covers everything queued there so far, its last uses included.
    if (block.stream != stream) {
      cuda::EventHandle event = take_event_locked();
      try {
        if (record_event(event, block.stream)) {
          wait_event(stream, event);
          waited = true;
        }
      } catch (...) {
        give_back_event_locked(event);
        throw;
      }
      give_back_event_locked(event);
    }
  } else {
    // Waiting on an event is cheap once it has happened, so no query first. The wait is queued on
    // `stream` now; recording the event again later (from the pool) does not change what it waits
    // for (cudaStreamWaitEvent waits for the record made before it).
    for (const StreamEvent& e : block.events) {
      if (e.stream == stream) continue;
      wait_event(stream, e.event);
      waited = true;
    }
    give_back_events_locked(block.events);
  }
  if (waited) ++stats_.stream_waits;
  block.stream = stream;
}

void* Allocator::allocate(size_t bytes, const char* what, cuda::StreamHandle stream) {
  const size_t size = round_size(bytes);
  std::lock_guard lock(mutex_);
  const bool streams = tracks_streams();
  if (streams) note_stream_locked(stream);
  if (caches()) {
    auto [first, last] = free_blocks_.equal_range(size);
    auto it = first;
    // A block of this stream first: it needs no wait.
    if (streams)
      while (it != last && it->second.stream != stream) ++it;
    if (it == last) it = first;
    if (it != last) {
      if (streams) order_reuse_locked(it->second, stream);  // on failure the block stays cached
      void* ptr = it->second.ptr;
      free_blocks_.erase(it);
      stats_.in_use += size;
      stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
      ++stats_.allocations;
      ++stats_.cache_hits;
      return ptr;
    }
  }
  const auto info = [&] {
    OutOfMemoryInfo i;
    i.device = device_.str();
    i.scope = AllocationScope::current();
    i.what = what ? what : "tensor";
    i.requested = size;
    i.in_use = stats_.in_use;
    i.reserved = stats_.reserved;
    i.limit = stats_.limit;
    return i;
  };
  if (stats_.limit && stats_.reserved + size > stats_.limit) release_cached_locked();
  if (stats_.limit && stats_.reserved + size > stats_.limit) throw out_of_memory(info(), "");
  void* ptr = nullptr;
  try {
    ptr = system_allocate(size);
  } catch (const OutOfMemoryError&) {
    release_cached_locked();  // cached blocks may be what fills the card: give them back and retry
    try {
      ptr = system_allocate(size);
    } catch (const OutOfMemoryError& refused) {
      OutOfMemoryInfo i = info();
      i.device_free = refused.info().device_free;
      i.device_total = refused.info().device_total;
      throw out_of_memory(std::move(i), refused.what());
    }
  }
  stats_.reserved += size;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  stats_.in_use += size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  ++stats_.allocations;
  return ptr;
}

void Allocator::deallocate(void* ptr, size_t bytes, cuda::StreamHandle stream,
                           std::span<const cuda::StreamHandle> also_used_on) noexcept {
  if (!ptr) return;
  const size_t size = round_size(bytes);
  std::lock_guard lock(mutex_);
  stats_.in_use -= size;
  if (!caches()) {
    stats_.reserved -= size;
    system_free(ptr, size);
    return;
  }
  FreeBlock block;
  block.ptr = ptr;
  block.stream = stream;
  try {
    if (tracks_streams()) {
      for (cuda::StreamHandle other : also_used_on)
        if (other != stream) several_streams_ = true;
      if (several_streams_) {
        const auto record_on = [&](cuda::StreamHandle s) {
          for (const StreamEvent& e : block.events)
            if (e.stream == s) return;  // one event per stream
          cuda::EventHandle event = take_event_locked();
          block.events.push_back({s, event});  // reserved below: cannot throw
          if (!record_event(event, s)) {  // the stream is gone, its work finished
            block.events.pop_back();
            idle_events_.push_back(event);  // reserved below: cannot throw
          }
        };
        block.events.reserve(also_used_on.size() + 1);
        idle_events_.reserve(idle_events_.size() + also_used_on.size() + 1);
        record_on(stream);
        for (cuda::StreamHandle other : also_used_on) record_on(other);
      }
    }
    free_blocks_.emplace(size, std::move(block));
  } catch (...) {
    // No event, or no room to cache it: without the events the block cannot be reused safely, so
    // it goes back to the system (cudaFree waits for the work that uses it).
    give_back_events_locked(block.events);
    stats_.reserved -= size;
    system_free(ptr, size);
  }
}

void Allocator::release_cached_locked() {
  for (auto& [size, block] : free_blocks_) {
    give_back_events_locked(block.events);
    system_free(block.ptr, size);
    stats_.reserved -= size;
  }
  free_blocks_.clear();
}

void Allocator::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

MemoryStats Allocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Allocator::set_limit(size_t bytes) {
  std::lock_guard lock(mutex_);
  stats_.limit = bytes;
  // Cached blocks count as reserved: drop them so a later cache hit cannot hand out memory
  // beyond the new cap.
  if (bytes && stats_.reserved > bytes) release_cached_locked();
}

void Allocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

Allocator& allocator_for(Device device) {
  // Process-wide like the devices they manage; built on first use and never moved.
  static CpuAllocator cpu;
  static std::mutex mutex;
  static std::vector<std::unique_ptr<CudaAllocator>> cuda_allocators;
  if (device.is_cpu()) return cpu;
  if (device.is_meta()) return meta::allocator();
  SG_CHECK(device.index >= 0 && device.index < cuda::device_count(), "allocator_for: device ",
           device.str(), " is not available (", cuda::unavailable_reason(), ")");
  std::lock_guard lock(mutex);
  if (cuda_allocators.empty()) cuda_allocators.resize(size_t(cuda::device_count()));
  auto& slot = cuda_allocators[size_t(device.index)];
  if (!slot) slot = std::make_unique<CudaAllocator>(device.index);
  return *slot;
}

ScopedMemoryLimit::ScopedMemoryLimit(Device device, size_t bytes)
    : allocator_(allocator_for(device)), previous_(allocator_.stats().limit) {
  allocator_.set_limit(bytes);
}

ScopedMemoryLimit::~ScopedMemoryLimit() { allocator_.set_limit(previous_); }

std::string memory_limit_text(Device device, size_t limit) {
  if (!limit) return detail::concat("memory on ", device.str(), ": no limit (--memory-limit not set)");
  return detail::concat("memory on ", device.str(), ": limit ", format_bytes(limit),
                        " (--memory-limit; every tensor of the device counts, cached blocks included)");
}

std::string memory_peak_text(Device device, const MemoryStats& stats) {
  std::string text = detail::concat("memory on ", device.str(), ": peak ", format_bytes(stats.peak_reserved),
                                    " reserved (", format_bytes(stats.peak_in_use), " in tensors)");
  if (!stats.limit) return text + ", no limit";
  return text + detail::concat(" of the ", format_bytes(stats.limit), " limit (",
                               int(std::lround(100.0 * double(stats.peak_reserved) / double(stats.limit))), "%)");
}

size_t parse_bytes(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  SG_CHECK(end != text.c_str() && value >= 0 && std::isfinite(value), "memory size \"", text,
           "\": expected a number with an optional unit such as 4GiB, 512MiB or 2GB");
  const std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KiB" || unit == "K") scale = 1024.0;
  else if (unit == "MiB" || unit == "M") scale = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  SG_CHECK(scale > 0, "memory size \"", text, "\": unknown unit \"", unit,
           "\" (expected B, KiB, MiB, GiB, KB, MB or GB)");
  return size_t(value * scale);
}

std::string format_bytes(size_t bytes) {
  char buffer[64];
  if (bytes >= (size_t(1) << 30)) std::snprintf(buffer, sizeof buffer, "%.2f GiB", double(bytes) / double(1 << 30));
  else if (bytes >= (size_t(1) << 20)) std::snprintf(buffer, sizeof buffer, "%.2f MiB", double(bytes) / double(1 << 20));
  else if (bytes >= 1024) std::snprintf(buffer, sizeof buffer, "%.2f KiB", double(bytes) / 1024.0);
  else std::snprintf(buffer, sizeof buffer, "%zu B", bytes);
  return buffer;
}

}  // namespace sg
