#pragma once
// The small CUDA runtime layer: the only place outside kernels/cuda/ that talks to CUDA.
// Declared without CUDA headers so that every other file compiles in a CPU-only build, where
// runtime_off.cpp implements these functions.
#include <cstddef>
#include <string>

struct CUstream_st;  // cudaStream_t is CUstream_st*
struct CUevent_st;   // cudaEvent_t is CUevent_st*

namespace sg::cuda {

using StreamHandle = CUstream_st*;
using EventHandle = CUevent_st*;

int device_count();                 // 0 when CUDA cannot be used; never throws
std::string unavailable_reason();   // "" when device_count() > 0
std::string device_name(int index);

// All of these throw sg::Error (OutOfMemoryError for allocations) naming the call.
void set_device(int index);
int current_device();  // cudaGetDevice: the calling thread's current device

// Makes `device` the calling thread's current device for the guard's lifetime and gives the
// caller's device back after, so that no call leaves the current device changed behind it (work
// launched later with no device of its own goes to the device the caller chose). Switches only
// when the device differs; the constructor throws sg::Error naming the call.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;  // -1: nothing to restore
};

// The device's free and total memory (cudaMemGetInfo); false (and zeros) when they cannot be read.
bool memory_info(int device, size_t& free_bytes, size_t& total_bytes) noexcept;
// Throws OutOfMemoryError when the GPU is full: its message says so with the card's free and total
// memory, and its info() carries them (core/allocator.cpp adds what was running and the advice).
// Like every call below that names a device, it leaves the caller's current device as it was.
void* device_malloc(size_t bytes, int device);
void device_free(void* ptr, int device) noexcept;
void* host_malloc_pinned(size_t bytes);
void host_free_pinned(void* ptr) noexcept;
// A null stream is the legacy default stream of the current device: callers make the device of
// the memory current first (sg::DeviceGuard), and remember that it does not wait for the
// non-blocking streams stream_create makes.
void memcpy_async(void* dst, const void* src, size_t bytes, StreamHandle stream);  // any direction
void memset_async(void* dst, int value, size_t bytes, StreamHandle stream);

// Streams are created non-blocking: they never wait for the legacy default stream, and it never
// waits for them.
StreamHandle stream_create(int device);
void stream_destroy(StreamHandle stream) noexcept;
void stream_synchronize(StreamHandle stream);
void stream_wait_event(StreamHandle stream, EventHandle event);

EventHandle event_create(int device, bool timing);
void event_destroy(EventHandle event) noexcept;
void event_record(EventHandle event, StreamHandle stream);
void event_synchronize(EventHandle event);
float event_elapsed_ms(EventHandle start, EventHandle end);

// The caching allocator's (core/allocator.h): a block's device can differ from the current
// device when it is freed or reused, and the default stream (nullptr) means the current device's,
// so these make `device` current for the call and put the previous current device back.
void event_record_on(int device, EventHandle event, StreamHandle stream);
void stream_wait_event_on(int device, StreamHandle stream, EventHandle event);

void device_synchronize(int device);
// Throws sg::Error when an earlier asynchronous launch failed; `what` names the op.
void check_last_error(const char* what);

}  // namespace sg::cuda
