// The CUDA runtime layer of a CPU-only build (SLIDEGRADE_CUDA=OFF): no device is ever
// reported, so no CUDA tensor can be made and the calls below are unreachable in practice;
// each still fails loudly rather than pretending to work.
#include "core/cuda/runtime.h"
#include "core/cuda/device_code.h"
#include "core/error.h"

namespace sg::cuda {
namespace {
[[noreturn]] void unavailable(const char* call) {
  throw Error(detail::concat(call, ": this slidegrade was built without CUDA (SLIDEGRADE_CUDA=OFF)"));
}
}  // namespace

int device_count() { return 0; }
std::string unavailable_reason() { return "built without CUDA (SLIDEGRADE_CUDA=OFF)"; }
std::string device_name(int) { unavailable("device_name"); }
int compute_capability(int) { unavailable("compute_capability"); }
std::string missing_code_reason(int) { unavailable("missing_code_reason"); }
int code_architecture(int) { unavailable("code_architecture"); }
void set_device(int) { unavailable("set_device"); }
int current_device() { unavailable("current_device"); }
DeviceGuard::DeviceGuard(int) { unavailable("DeviceGuard"); }
DeviceGuard::~DeviceGuard() = default;
bool memory_info(int, size_t& free_bytes, size_t& total_bytes) noexcept {
  free_bytes = total_bytes = 0;
  return false;
}
void* device_malloc(size_t, int) { unavailable("device_malloc"); }
void device_free(void*, int) noexcept {}
void* host_malloc_pinned(size_t) { unavailable("host_malloc_pinned"); }
void host_free_pinned(void*) noexcept {}
void memcpy_async(void*, const void*, size_t, StreamHandle) { unavailable("memcpy_async"); }
void memset_async(void*, int, size_t, StreamHandle) { unavailable("memset_async"); }
StreamHandle stream_create(int) { unavailable("stream_create"); }
void stream_destroy(StreamHandle) noexcept {}
void stream_synchronize(StreamHandle) { unavailable("stream_synchronize"); }
void stream_wait_event(StreamHandle, EventHandle) { unavailable("stream_wait_event"); }
EventHandle event_create(int, bool) { unavailable("event_create"); }
void event_destroy(EventHandle) noexcept {}
void event_record(EventHandle, StreamHandle) { unavailable("event_record"); }
void event_synchronize(EventHandle) { unavailable("event_synchronize"); }
float event_elapsed_ms(EventHandle, EventHandle) { unavailable("event_elapsed_ms"); }
void event_record_on(int, EventHandle, StreamHandle) { unavailable("event_record_on"); }
void stream_wait_event_on(int, StreamHandle, EventHandle) { unavailable("stream_wait_event_on"); }
void device_synchronize(int) { unavailable("device_synchronize"); }
void check_last_error(const char*) {}

}  // namespace sg::cuda
