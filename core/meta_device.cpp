#include "core/meta_device.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"

namespace sg::meta {
namespace {

std::mutex active_mutex;
Session* active_session = nullptr;

// Addresses that are never backed by memory: a bump pointer, so that no two blocks of a process
// ever share an address (the session's records stay unambiguous) and a stray read faults. Starts
// high and aligned like the other allocators' blocks.
class MetaAllocator final : public Allocator {
 public:
  MetaAllocator() : Allocator(Device::meta()) {}

 protected:
  void* system_allocate(size_t bytes) override {
    const uintptr_t address = next_.fetch_add(bytes, std::memory_order_relaxed);
    if (Session* session = Session::active()) session->on_allocate(address, bytes);
    return reinterpret_cast<void*>(address);
  }
  void system_free(void* ptr, size_t) noexcept override {
    if (Session* session = Session::active()) session->on_free(reinterpret_cast<uintptr_t>(ptr));
  }
  // Nothing to reuse: every free goes back at once, so in_use is exactly the live tensors.
  bool caches() const override { return false; }

 private:
  std::atomic<uintptr_t> next_{uintptr_t(1) << 44};
};

}  // namespace

Allocator& allocator() {
  static MetaAllocator instance;
  return instance;
}

bool BlockLife::saved_at(uint64_t event) const {
  for (const auto& [from, to] : saved)
    if (from <= event && event < to) return true;
  return false;
}

Session::Session(Target target) : target_(target) {
  std::lock_guard lock(active_mutex);
  SG_CHECK(active_session == nullptr, "meta::Session: another meta session is open (one at a time per process)");
  active_session = this;
}

Session::~Session() {
  kept_.clear();  // frees the kept blocks while the session still records them
  std::lock_guard lock(active_mutex);
  active_session = nullptr;
}

Session* Session::active() {
  std::lock_guard lock(active_mutex);
  return active_session;
}

Session& Session::current(std::string_view op) {
  Session* session = active();
  SG_CHECK(session != nullptr, op, ": a meta tensor outside a meta::Session (core/meta_device.h): the meta device "
           "stands in for a target device, which the session names");
  return *session;
}

size_t Session::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}
size_t Session::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}
uint64_t Session::peak_event() const {
  std::lock_guard lock(mutex_);
  return peak_event_;
}
std::string Session::peak_scope() const {
  std::lock_guard lock(mutex_);
  return peak_scope_;
}
void Session::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_ = in_use_;
  peak_event_ = event_;
  peak_scope_ = AllocationScope::current();
}
size_t Session::saved_bytes() const {
  std::lock_guard lock(mutex_);
  return saved_;
}
std::vector<BlockLife> Session::blocks() const {
  std::lock_guard lock(mutex_);
  return blocks_;
}

BlockLife* Session::find_locked(uintptr_t address) {
  auto it = live_.upper_bound(address);
  if (it == live_.begin()) return nullptr;
  --it;
  BlockLife& block = blocks_[it->second];
  return address < block.address + block.bytes ? &block : nullptr;
}

std::optional<BlockLife> Session::block_of(const void* address) const {
  std::lock_guard lock(mutex_);
  const BlockLife* block = const_cast<Session*>(this)->find_locked(reinterpret_cast<uintptr_t>(address));
  return block ? std::optional<BlockLife>(*block) : std::nullopt;
}

void Session::on_allocate(uintptr_t address, size_t bytes) {
  std::lock_guard lock(mutex_);
  const uint64_t event = ++event_;
  live_[address] = blocks_.size();
  blocks_.push_back(BlockLife{address, bytes, event, UINT64_MAX, {}});
  in_use_ += bytes;
  if (in_use_ > peak_) {
    peak_ = in_use_;
    peak_event_ = event;
    peak_scope_ = AllocationScope::current();
  }
}

void Session::on_free(uintptr_t address) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(address);
  if (it == live_.end()) return;  // allocated before the session opened
  BlockLife& block = blocks_[it->second];
  const uint64_t event = ++event_;
  block.freed_at = event;
  in_use_ -= block.bytes;
  // A Context cannot hold a freed block; whatever holds it has let it go by now.
  if (auto saved = saved_refs_.find(address); saved != saved_refs_.end()) {
    if (saved->second > 0) {
      block.saved.back().second = event;
      saved_ -= block.bytes;
    }
    saved_refs_.erase(saved);
  }
  live_.erase(it);
}

void Session::mark_saved(const Tensor& tensor, int delta) noexcept {
  if (!tensor.defined() || !tensor.device().is_meta() || tensor.nbytes() == 0) return;
  std::lock_guard lock(mutex_);
  BlockLife* block = find_locked(reinterpret_cast<uintptr_t>(tensor.data()));
  if (!block) return;  // allocated before the session opened
  int& refs = saved_refs_[block->address];
  const bool was = refs > 0;
  refs = std::max(0, refs + delta);  // a hold from before the session opened lets go without a mark
  const bool is = refs > 0;
  if (!is) saved_refs_.erase(block->address);  // `refs` is gone from here on
  if (was == is) return;
  const uint64_t event = ++event_;
  if (is) {
    block->saved.emplace_back(event, UINT64_MAX);
    saved_ += block->bytes;
  } else {
    block->saved.back().second = event;
    saved_ -= block->bytes;
  }
}

void kernel_scratch(const std::vector<size_t>& bytes, const char* what) {
  std::vector<Tensor> held;
  held.reserve(bytes.size());
  for (const size_t b : bytes) held.push_back(Tensor::empty({int64_t(b)}, DType::u8, Device::meta(), what));
}

}  // namespace sg::meta
