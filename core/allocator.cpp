#include "core/allocator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/error.h"

namespace sg {
namespace {

constexpr size_t kAlignment = 256;

class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() : Allocator(Device::cpu()) {}
  ~CpuAllocator() override { release_cached(); }

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
// reused for requests of the same rounded size. Blocks are not tied to streams: work that
// uses one tensor on two streams must order them with an Event (as the loader's copy stream
// does), which is also what makes reuse after free safe.
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int index) : Allocator(Device::cuda(index)) {}
  ~CudaAllocator() override { release_cached(); }

 protected:
  void* system_allocate(size_t bytes) override { return cuda::device_malloc(bytes, device().index); }
  void system_free(void* ptr, size_t) noexcept override { cuda::device_free(ptr, device().index); }
  bool caches() const override { return true; }
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

void* Allocator::allocate(size_t bytes, const char* what) {
  const size_t size = round_size(bytes);
  std::lock_guard lock(mutex_);
  if (caches()) {
    auto it = free_blocks_.find(size);
    if (it != free_blocks_.end()) {
      void* ptr = it->second;
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

void Allocator::deallocate(void* ptr, size_t bytes) noexcept {
  if (!ptr) return;
  const size_t size = round_size(bytes);
  std::lock_guard lock(mutex_);
  stats_.in_use -= size;
  if (caches()) {
    free_blocks_.emplace(size, ptr);
  } else {
    stats_.reserved -= size;
    system_free(ptr, size);
  }
}

void Allocator::release_cached_locked() {
  for (auto& [size, ptr] : free_blocks_) {
    system_free(ptr, size);
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
