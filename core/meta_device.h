#pragma once
// The meta device: tensors with a shape, a dtype and an address, but no memory and no values.
//
// It exists so that the memory plan (train/memory_plan.h) can run the real modules, the real
// checkpointing and the real optimizer, and count what they allocate, instead of keeping a second
// description of the network that must be changed with every module. On meta:
// - the allocator (allocator_for(Device::meta())) counts and rounds bytes exactly as the CPU and
//   CUDA allocators do (Allocator::round_size) and hands out addresses that are never backed by
//   memory: reading one is a bug and crashes;
// - every kernel's dispatcher checks its arguments as on any device, then, instead of computing,
//   allocates the scratch that the target device's kernel would allocate for the same call (each
//   kernel exports the size of its scratch next to its launcher, so the two cannot drift apart),
//   and counts its multiply-adds;
// - nothing has a value: Tensor::to_floats and copies off the device throw; copies onto it and
//   fills do nothing.
// A Session says whose kernels the run stands in for (the CPU's, or a CUDA card's architecture)
// and records every block's life, so that the plan can say afterwards what was live at the peak.
// One session at a time per process (the plan is one); kernels called on meta outside a session
// throw.
//
// A new dispatcher (kernels/<op>.cpp) handles is_meta() after its argument checks and before its
// CPU branch: it returns when neither target's kernel takes scratch, else it allocates that scratch
// with kernel_scratch, sized by the same function the launcher uses. The op harness's meta mode
// (tests/support/op_harness.md) compares every case's scratch on meta with the real device's.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace sg::meta {

// Whose kernels a meta run stands in for: their scratch is what each kernel's meta branch allocates.
struct Target {
  bool cuda = false;   // the CUDA kernels' scratch; false: the CPU kernels'
  int cuda_arch = 61;  // the code architecture the card runs (core/cuda/runtime.h code_architecture)
  // The cuBLAS handle's workspace is taken at a process's first GEMM and kept: true when an earlier
  // GEMM took it already (it is not counted again).
  bool cublas_workspace_held = false;
};

// One block of the meta allocator from its allocation to its free, in the session's event order.
struct BlockLife {
  uintptr_t address = 0;
  size_t bytes = 0;  // rounded as the allocator rounds
  uint64_t allocated_at = 0;
  uint64_t freed_at = UINT64_MAX;  // UINT64_MAX: still live
  // [from, to) event numbers during which a Context held the block for backward.
  std::vector<std::pair<uint64_t, uint64_t>> saved;
  bool live_at(uint64_t event) const { return allocated_at <= event && event < freed_at; }
  bool saved_at(uint64_t event) const;
};

class Session {
 public:
  // Throws when another session is open.
  explicit Session(Target target);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Target& target() const { return target_; }

  // Multiply-adds of the convolutions and matrix products run so far (their meta branches add them).
  int64_t macs() const { return macs_; }
  void add_macs(int64_t macs) { macs_ += macs; }

  // Something a kernel takes on first use and keeps for the process (the cuBLAS workspace): held
  // for the session's life under `name`.
  bool keeps(const std::string& name) const { return kept_.count(name) > 0; }
  void keep(const std::string& name, Tensor tensor) { kept_[name] = std::move(tensor); }
  const Tensor* kept(const std::string& name) const {
    const auto it = kept_.find(name);
    return it == kept_.end() ? nullptr : &it->second;
  }
  void release_kept() { kept_.clear(); }

  // Bytes in meta tensors now, and the most since the session opened (or since reset_peak).
  size_t in_use() const;
  size_t peak() const;
  // The event at which peak() was first reached and the allocation scopes open then
  // (core/allocator.h AllocationScope: "forward > blocks.3.1").
  uint64_t peak_event() const;
  std::string peak_scope() const;
  void reset_peak();
  // Bytes a Context holds for backward now (nn/context.h marks what it saves).
  size_t saved_bytes() const;
  // Every block the session saw, live or freed.
  std::vector<BlockLife> blocks() const;
  // A copy of the live block that holds `address` (a tensor's data()); nullopt when there is none.
  // A copy: the records move as the session grows.
  std::optional<BlockLife> block_of(const void* address) const;

  // The open session; nullptr when none is.
  static Session* active();
  // The open session; throws naming `op` (a kernel called on meta) when none is.
  static Session& current(std::string_view op);

  // nn::Context: `tensor` (on meta) is now held (+1) or no longer held (-1) for a backward.
  void mark_saved(const Tensor& tensor, int delta) noexcept;
  // The meta allocator's events (called with its mutex held).
  void on_allocate(uintptr_t address, size_t bytes);
  void on_free(uintptr_t address);

 private:
  BlockLife* find_locked(uintptr_t address);

  Target target_;
  int64_t macs_ = 0;
  std::map<std::string, Tensor> kept_;
  mutable std::mutex mutex_;
  uint64_t event_ = 0;
  size_t in_use_ = 0, peak_ = 0, saved_ = 0;
  uint64_t peak_event_ = 0;
  std::string peak_scope_;
  std::vector<BlockLife> blocks_;
  std::map<uintptr_t, size_t> live_;        // address -> index in blocks_, live blocks only
  std::map<uintptr_t, int> saved_refs_;     // address -> how many Context entries hold it
};

// The meta device's allocator (allocator_for(Device::meta()) returns it).
Allocator& allocator();

// One kernel call's scratch on meta: blocks of `bytes` allocated together, then freed, as the
// target's kernel allocates them (an empty list: no scratch).
void kernel_scratch(const std::vector<size_t>& bytes, const char* what);

}  // namespace sg::meta
