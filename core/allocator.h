#pragma once
// Per-device memory allocators that count what they hand out and can be capped.
//
// The cap is what lets a large card (or the CPU) behave like a 4 GB GTX 1050 Ti: every byte
// the allocator holds from the system, cached blocks included, counts against it. An
// allocation over the cap throws OutOfMemoryError naming the request, the usage and the cap.
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

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

// Parses "4GiB", "512MiB", "1.5GB", "1000000" into bytes; errors name the text.
size_t parse_bytes(const std::string& text);
std::string format_bytes(size_t bytes);

}  // namespace sg
