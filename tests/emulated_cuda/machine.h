#pragma once
// The emulated machine behind the CUDA runtime API: two devices of one personality (a GTX 1050 Ti
// by default), device memory in arenas of their own, pinned host memory, and streams whose queued
// work runs at the latest moment the API allows. Internal to tests/emulated_cuda/.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sg_emu {

// The card being emulated: what cudaGetDeviceProperties reports and what launches are checked
// against. Chosen by SLIDEGRADE_EMULATED_GPU: gtx1050ti (default), t4, h100.
struct Personality {
  const char* key;
  const char* name;
  int major, minor;
  size_t total_memory;
  size_t context_bytes;  // what the CUDA context takes from a real card: not free for cudaMalloc
  int multiprocessors;
  size_t shared_per_block;        // without opting in (cudaFuncSetAttribute)
  size_t shared_per_block_optin;  // the most a kernel may opt in to
  size_t shared_per_multiprocessor;
  int max_threads_per_block;
  int max_threads_per_multiprocessor;
  int registers_per_block;
  int clock_khz;
  int l2_bytes;
  int bus_width;
  int arch() const { return major * 100 + minor * 10; }  // as __CUDA_ARCH__
};
const Personality& personality();
constexpr int kDeviceCount = 2;

// Everything below is guarded by this one mutex: API calls from several host threads, and the
// execution of queued work (one kernel at a time on the whole machine).
std::recursive_mutex& machine_mutex();

// Ends the process with a message naming what went wrong (a bug the emulator caught in device
// code or in the way the host drives the device). Never returns.
[[noreturn]] void fault(const std::string& message);

// ---- Errors: CUDA's sticky "last error" per host thread, with our detailed text ----------------
cudaError_t set_error(cudaError_t error, const std::string& detail);

// ---- Memory ------------------------------------------------------------------------------------
enum class MemoryKind { unknown_host, pinned_host, device };
struct MemoryRange {
  MemoryKind kind = MemoryKind::unknown_host;
  int device = -1;             // for device memory
  uintptr_t begin = 0, end = 0;  // the allocation holding the address (pinned and device)
};
MemoryRange classify(const void* p);
// True when [p, p + bytes) lies inside one device allocation of `device`.
bool inside_device_allocation(const void* p, size_t bytes, int device);
// Is `address` inside the arena of some device? (any allocation or not); returns the device or -1.
int arena_device(uintptr_t address);
// The reserved address range of a device's memory.
void arena_bounds(int device, uintptr_t& begin, uintptr_t& size);
// Device memory is readable and writable only while device work runs: host code that
// dereferences a device pointer faults (see machine.cpp, DeviceAccessWindow).
class DeviceAccessWindow {
 public:
  DeviceAccessWindow();
  ~DeviceAccessWindow();
  DeviceAccessWindow(const DeviceAccessWindow&) = delete;
  DeviceAccessWindow& operator=(const DeviceAccessWindow&) = delete;
};

// ---- Streams and events --------------------------------------------------------------------------
struct StreamState;
// A point in a stream's order: done when the stream has completed `sequence` operations.
struct StreamPoint {
  std::shared_ptr<StreamState> stream;
  uint64_t sequence = 0;
};
struct Operation {
  std::string what;                  // for messages: "kernel ...", "cudaMemcpyAsync ..."
  std::vector<StreamPoint> waits;    // must be done before this operation runs
  std::function<void()> run;
};
struct StreamState {
  int device = 0;
  bool blocking = true;  // waits for (and is waited for by) the legacy default stream
  bool legacy = false;
  std::deque<Operation> queue;
  uint64_t enqueued = 0, completed = 0;
};

// The stream a handle names (nullptr: the legacy default stream of the current device). Sets the
// last error and returns null for a handle that is not a live stream.
std::shared_ptr<StreamState> stream_state(cudaStream_t stream, const char* call);
// Queues an operation; returns its point.
StreamPoint enqueue(const std::shared_ptr<StreamState>& stream, Operation operation);
// Runs queued work until `point` is done (work it waits for on other streams first).
void run_until(const StreamPoint& point);
// Runs everything queued on every stream of `device` (-1: of every device).
void run_all(int device);

int current_device();

}  // namespace sg_emu
