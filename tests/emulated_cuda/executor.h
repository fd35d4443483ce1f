#pragma once
// Kernel execution on the emulated device: each block's threads run as fibers on the host thread
// that drains the stream, switching only at barriers and warp collectives. Internal to
// tests/emulated_cuda/.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sg_emu {

// One 16-byte (or smaller) cp.async copy, done at the matching cp.async.wait_group.
struct AsyncCopy {
  void* shared_destination;
  const void* global_source;  // null: zero fill
  int copy_bytes;             // bytes the instruction copies (4, 8 or 16)
  int source_bytes;           // bytes read from the source; the rest is zero filled
};

// A warp-collective operation as one lane posts it; the last lane to arrive makes the executor
// call `resolve` with the posts of every lane in the mask (indexed by lane), whose results each
// lane reads after it resumes.
struct WarpPost {
  unsigned mask = 0;
  int kind = 0;  // a tag compared between lanes: lanes of one collective must post the same kind
  const char* file = nullptr;
  int line = 0;
  void* data = nullptr;  // the lane's operands and results
  void (*resolve)(WarpPost* const (&lanes)[32], unsigned mask) = nullptr;
};

// Blocks the calling device thread until every lane of `post.mask` has posted a collective, then
// resolves it. `post.mask` must contain the calling lane.
void warp_collective(WarpPost& post);

// Marks emulator code running on a device thread's fiber: the load/store hooks ignore it (library
// code such as std::string may be shared with the hooked kernel translation units), and a fault
// while building a message cannot recurse. Every entry point that device code calls holds one.
class EmulatorScope {
 public:
  EmulatorScope();
  ~EmulatorScope();
  EmulatorScope(const EmulatorScope&) = delete;
  EmulatorScope& operator=(const EmulatorScope&) = delete;

 private:
  void* thread_;
};

// The calling device thread: linear index in its block, lane, and description for messages.
int current_linear_thread();
std::string describe_current_thread();
bool in_device_code();

// cp.async bookkeeping of the calling device thread.
void async_copy_issue(const AsyncCopy& copy);
void async_copy_commit();
void async_copy_wait(int pending_allowed);

// Shared-memory checks for accesses made by emulator code on behalf of a device thread
// (ldmatrix rows, cp.async destinations): `thread` is the linear thread index.
void shared_access_by(int thread, const void* address, size_t bytes, bool write);
// Global-memory check for a read made on behalf of the calling device thread (cp.async sources).
void global_access(const void* address, size_t bytes, bool write);
// The shared-memory section: [begin, end).
uintptr_t shared_begin();
uintptr_t shared_end();

}  // namespace sg_emu
