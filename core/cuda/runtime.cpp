// The CUDA runtime layer (built only with SLIDEGRADE_CUDA=ON).
#include "core/cuda/runtime.h"
#include "core/cuda/device_code.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <utility>

#include "core/allocator.h"
#include "core/cuda_architectures.h"
#include "core/error.h"

namespace sg::cuda {
namespace {

[[noreturn]] void fail(cudaError_t status, const char* call) {
  // Clear the sticky "last error" so a later check does not report this failure twice.
  (void)cudaGetLastError();
  throw Error(detail::concat("CUDA error in ", call, ": ", cudaGetErrorName(status), " (",
                             cudaGetErrorString(status), ")"));
}

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail(status, call);
}

struct Probe {
  int count = 0;
  std::string reason;
};

// Probed once: a binary built with CUDA must run on a machine without a driver or a GPU.
const Probe& probe() {
  static const Probe result = [] {
    Probe p;
    const cudaError_t status = cudaGetDeviceCount(&p.count);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      p.count = 0;
      p.reason = detail::concat("cudaGetDeviceCount: ", cudaGetErrorString(status));
    } else if (p.count == 0) {
      p.reason = "no CUDA device found";
    }
    return p;
  }();
  return result;
}

}  // namespace

int device_count() { return probe().count; }
std::string unavailable_reason() { return probe().reason; }

std::string device_name(int index) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  return detail::concat(prop.name, " (sm_", prop.major, prop.minor, ")");
}

int compute_capability(int index) {
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index), "cudaDeviceGetAttribute");
  return major * 10 + minor;
}

std::string missing_code_reason(int index) {
  const CudaArchitectures& held = compiled_cuda_architectures();
  if (held.empty()) return "";  // the emulated device: its kernels are compiled for the emulated card
  return missing_cuda_code_reason(held, compute_capability(index), detail::concat("cuda:", index, " ", device_name(index)));
}

int code_architecture(int index) {
  const CudaArchitectures& held = compiled_cuda_architectures();
  return held.empty() ? compute_capability(index) : loaded_cuda_architecture(held, compute_capability(index));
}

void set_device(int index) { check(cudaSetDevice(index), "cudaSetDevice"); }

int current_device() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

DeviceGuard::DeviceGuard(int device) {
  const int previous = current_device();
  if (previous == device) return;
  set_device(device);
  previous_ = previous;
}

DeviceGuard::~DeviceGuard() {
  // Putting back a device that was current a moment ago does not fail in practice; if it does,
  // the error must not outlive this call as a sticky "last error" blamed on a later launch.
  if (previous_ >= 0 && cudaSetDevice(previous_) != cudaSuccess) (void)cudaGetLastError();
}

bool memory_info(int device, size_t& free_bytes, size_t& total_bytes) noexcept {
  free_bytes = total_bytes = 0;
  try {
    const DeviceGuard guard(device);  // cudaMemGetInfo reports on the current device
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) return true;
  } catch (const Error&) {  // cudaSetDevice refused the device: nothing can be read
  }
  (void)cudaGetLastError();
  free_bytes = total_bytes = 0;
  return false;
}

void* device_malloc(size_t bytes, int device) {
  const DeviceGuard guard(device);  // cudaMalloc allocates on the current device
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    OutOfMemoryInfo info;
    info.device = detail::concat("cuda:", device);
    info.requested = bytes;
    const bool known = memory_info(device, info.device_free, info.device_total);
    // The CUDA context, cuBLAS and other processes hold what the allocator does not.
    throw OutOfMemoryError(
        known ? detail::concat("cudaMalloc refused it: cuda:", device, " has ", format_bytes(info.device_free),
                               " free of ", format_bytes(info.device_total),
                               " (the rest: slidegrade's blocks, the CUDA context, other processes)")
              : detail::concat("cudaMalloc refused it: cuda:", device, " is out of memory"),
        std::move(info));
  }
  check(status, "cudaMalloc");
  return ptr;
}

void device_free(void* ptr, int device) noexcept {
  try {
    const DeviceGuard guard(device);  // the block's device, as when it was allocated
    (void)cudaFree(ptr);
  } catch (const Error&) {  // the device cannot be made current: the block cannot be freed
  }
}

void* host_malloc_pinned(size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMallocHost(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw OutOfMemoryError(detail::concat("cudaMallocHost of ", bytes, " bytes failed"));
  }
  check(status, "cudaMallocHost");
  return ptr;
}

void host_free_pinned(void* ptr) noexcept { (void)cudaFreeHost(ptr); }

void memcpy_async(void* dst, const void* src, size_t bytes, StreamHandle stream) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream), "cudaMemcpyAsync");
}

void memset_async(void* dst, int value, size_t bytes, StreamHandle stream) {
  check(cudaMemsetAsync(dst, value, bytes, stream), "cudaMemsetAsync");
}

StreamHandle stream_create(int device) {
  const DeviceGuard guard(device);  // a stream belongs to the device current at creation
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return stream;
}

void stream_destroy(StreamHandle stream) noexcept { (void)cudaStreamDestroy(stream); }
void stream_synchronize(StreamHandle stream) { check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }
void stream_wait_event(StreamHandle stream, EventHandle event) {
  check(cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent");
}

EventHandle event_create(int device, bool timing) {
  const DeviceGuard guard(device);  // an event belongs to the device current at creation
  cudaEvent_t event = nullptr;
  check(cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming),
        "cudaEventCreateWithFlags");
  return event;
}

void event_destroy(EventHandle event) noexcept { (void)cudaEventDestroy(event); }
void event_record(EventHandle event, StreamHandle stream) { check(cudaEventRecord(event, stream), "cudaEventRecord"); }
void event_synchronize(EventHandle event) { check(cudaEventSynchronize(event), "cudaEventSynchronize"); }
float event_elapsed_ms(EventHandle start, EventHandle end) {
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
  return ms;
}

namespace {
// Makes `device` current for its lifetime; the previous device comes back after.
class OnDevice {
 public:
  explicit OnDevice(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) {
      check(cudaSetDevice(device), "cudaSetDevice");
      switched_ = true;
    }
  }
  ~OnDevice() {
    if (switched_) (void)cudaSetDevice(previous_);
  }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};
}  // namespace

void event_record_on(int device, EventHandle event, StreamHandle stream) {
  const OnDevice on(device);
  check(cudaEventRecord(event, stream), "cudaEventRecord (caching allocator)");
}

void stream_wait_event_on(int device, StreamHandle stream, EventHandle event) {
  const OnDevice on(device);
  check(cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent (caching allocator)");
}

void device_synchronize(int device) {
  const DeviceGuard guard(device);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void check_last_error(const char* what) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(detail::concat(what, ": CUDA kernel launch failed: ", cudaGetErrorName(status), " (",
                               cudaGetErrorString(status), ")"));
}

}  // namespace sg::cuda
