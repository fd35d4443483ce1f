// The emulated machine: personalities, device and pinned memory, streams, events and the CUDA
// runtime API calls that manage them (kernel launches: executor.cpp).
#include "tests/emulated_cuda/machine.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>

#include "tests/emulated_cuda/sanitizers.h"
#if SG_EMU_ASAN
#include <sanitizer/asan_interface.h>
#define SG_EMU_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SG_EMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SG_EMU_POISON(p, n) ((void)(p), (void)(n))
#define SG_EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sg_emu {
namespace {

constexpr size_t kMiB = size_t(1) << 20, kGiB = size_t(1) << 30;

const Personality kPersonalities[] = {
    {"gtx1050ti", "NVIDIA GeForce GTX 1050 Ti", 6, 1, 4 * kGiB, 200 * kMiB, 6, 48 << 10, 48 << 10, 96 << 10, 1024, 2048,
     65536, 1392000, 1 << 20, 128},
    {"t4", "Tesla T4", 7, 5, 15 * kGiB, 300 * kMiB, 40, 48 << 10, 64 << 10, 64 << 10, 1024, 1024, 65536, 1590000,
     4 << 20, 256},
    {"h100", "NVIDIA H100 80GB HBM3", 9, 0, 80 * kGiB, 500 * kMiB, 132, 48 << 10, 227 << 10, 228 << 10, 1024, 2048,
     65536, 1980000, 50 << 20, 5120},
};

// ---- Errors ----------------------------------------------------------------------------------------
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local cudaError_t t_detail_code = cudaSuccess;
thread_local std::string t_detail;

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* error_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

// ---- Device memory arenas -------------------------------------------------------------------------
// Each device's memory is one reserved range of the address space, apart from every host
// allocation, so the emulator can tell a device pointer from a host pointer by its value. Blocks
// are 256-byte aligned (as cudaMalloc's) with a poisoned red zone behind each for AddressSanitizer,
// and filled with 0xff bytes (NaN in every float type) so reads of memory nothing wrote show.
constexpr size_t kAlignment = 256, kRedZone = 256;

struct Arena {
  uintptr_t base = 0;
  size_t size = 0;
  size_t high_water = 0;                 // bytes from base ever handed out (the range made accessible)
  size_t in_use = 0;                     // bytes of live blocks, red zones included
  std::map<uintptr_t, size_t> free;      // begin -> size, coalesced
  std::map<uintptr_t, size_t> live;      // begin -> requested bytes
};

struct Machine {
  const Personality* card = nullptr;
  Arena arenas[kDeviceCount];
  std::map<uintptr_t, size_t> pinned;    // begin -> bytes
  int window_depth = 0;
  std::shared_ptr<StreamState> legacy[kDeviceCount];
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  struct sigaction previous_segv {};
};

Machine& machine();

void set_protection(int prot) {
  Machine& m = machine();
  for (Arena& a : m.arenas) {
    const size_t bytes = (a.high_water + 4095) & ~size_t(4095);
    if (bytes && mprotect(reinterpret_cast<void*>(a.base), bytes, prot) != 0) {
      std::perror("emulated CUDA device: mprotect of device memory");
      std::abort();
    }
  }
}

void on_segv(int signal, siginfo_t* info, void* context) {
  const int device = arena_device(reinterpret_cast<uintptr_t>(info->si_addr));
  if (device >= 0) {
    char text[256];
    const int n = std::snprintf(text, sizeof text,
                                "emulated CUDA device: host code accessed device memory of cuda:%d at %p (a device "
                                "pointer dereferenced on the host; copy it with cudaMemcpy first)\n",
                                device, info->si_addr);
    if (n > 0) (void)!write(2, text, size_t(n));
  }
  // Hand the fault to whoever had the signal before (AddressSanitizer prints the host stack).
  Machine& m = machine();
  sigaction(SIGSEGV, &m.previous_segv, nullptr);
  (void)signal, (void)context;
}

Machine& machine() {
  static Machine* m = [] {
    auto* result = new Machine;  // never destroyed: device memory outlives static destructors
    const char* wanted = std::getenv("SLIDEGRADE_EMULATED_GPU");
    const std::string key = wanted && *wanted ? wanted : "gtx1050ti";
    for (const Personality& p : kPersonalities)
      if (key == p.key) result->card = &p;
    if (!result->card) {
      std::fprintf(stderr, "emulated CUDA device: SLIDEGRADE_EMULATED_GPU=%s is not a card it emulates (gtx1050ti, t4, "
                   "h100)\n", key.c_str());
      std::exit(2);
    }
    for (int d = 0; d < kDeviceCount; ++d) {
      Arena& a = result->arenas[d];
      a.size = result->card->total_memory;
      void* p = mmap(nullptr, a.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        std::perror("emulated CUDA device: reserving device memory");
        std::abort();
      }
      a.base = reinterpret_cast<uintptr_t>(p);
      a.free[a.base] = a.size;
      auto stream = std::make_shared<StreamState>();
      stream->device = d;
      stream->legacy = true;
      result->legacy[d] = stream;
    }
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &result->previous_segv);
    return result;
  }();
  return *m;
}

thread_local int t_current_device = 0;

std::string hex(const void* p) {
  std::ostringstream s;
  s << p;
  return s.str();
}

std::string describe(const MemoryRange& r) {
  switch (r.kind) {
    case MemoryKind::device: return "device memory of cuda:" + std::to_string(r.device);
    case MemoryKind::pinned_host: return "pinned host memory";
    default: return "host memory";
  }
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const Personality& personality() { return *machine().card; }

std::recursive_mutex& machine_mutex() {
  static std::recursive_mutex m;
  return m;
}

void fault(const std::string& message) {
  std::fprintf(stderr, "\nemulated CUDA device: %s\n", message.c_str());
#if SG_EMU_ASAN
  __sanitizer_print_stack_trace();  // where in the kernel (or the host code) it happened
#endif
  std::fflush(stderr);
  std::abort();
}

cudaError_t set_error(cudaError_t error, const std::string& detail) {
  t_last_error = error;
  t_detail_code = error;
  t_detail = std::string(error_text(error)) + ": " + detail;
  return error;
}

int current_device() { return t_current_device; }

// ---- Memory -----------------------------------------------------------------------------------------
int arena_device(uintptr_t address) {
  const Machine& m = machine();
  for (int d = 0; d < kDeviceCount; ++d)
    if (address - m.arenas[d].base < m.arenas[d].size) return d;
  return -1;
}

void arena_bounds(int device, uintptr_t& begin, uintptr_t& size) {
  begin = machine().arenas[device].base;
  size = machine().arenas[device].size;
}

MemoryRange classify(const void* p) {
  std::lock_guard lock(machine_mutex());
  Machine& m = machine();
  const auto a = reinterpret_cast<uintptr_t>(p);
  MemoryRange r;
  const int d = arena_device(a);
  if (d >= 0) {
    r.kind = MemoryKind::device;
    r.device = d;
    const auto& live = m.arenas[d].live;
    auto it = live.upper_bound(a);
    if (it != live.begin()) {
      --it;
      if (a < it->first + std::max<size_t>(it->second, 1)) r.begin = it->first, r.end = it->first + it->second;
    }
    return r;
  }
  auto it = m.pinned.upper_bound(a);
  if (it != m.pinned.begin()) {
    --it;
    if (a < it->first + it->second) {
      r.kind = MemoryKind::pinned_host;
      r.begin = it->first, r.end = it->first + it->second;
    }
  }
  return r;
}

bool inside_device_allocation(const void* p, size_t bytes, int device) {
  const MemoryRange r = classify(p);
  const auto a = reinterpret_cast<uintptr_t>(p);
  return r.kind == MemoryKind::device && (device < 0 || r.device == device) && r.end != 0 && a + bytes <= r.end;
}

DeviceAccessWindow::DeviceAccessWindow() {
  machine_mutex().lock();
  if (machine().window_depth++ == 0) set_protection(PROT_READ | PROT_WRITE);
}
DeviceAccessWindow::~DeviceAccessWindow() {
  if (--machine().window_depth == 0) set_protection(PROT_NONE);
  machine_mutex().unlock();
}

// ---- Streams ----------------------------------------------------------------------------------------
}  // namespace sg_emu

struct CUstream_st {
  std::shared_ptr<sg_emu::StreamState> state;
};
struct CUevent_st {
  int device = 0;
  bool timing = true;
  struct State {
    std::optional<sg_emu::StreamPoint> point;
    double time_ms = 0;
  };
  std::shared_ptr<State> state = std::make_shared<State>();
};

namespace sg_emu {

std::shared_ptr<StreamState> stream_state(cudaStream_t stream, const char* call) {
  Machine& m = machine();
  if (stream == nullptr) return m.legacy[t_current_device];
  if (!m.streams.count(stream)) {
    set_error(cudaErrorInvalidResourceHandle,
              std::string(call) + ": the stream " + hex(stream) + " is not a live stream (destroyed, or never created)");
    return nullptr;
  }
  return stream->state;
}

StreamPoint enqueue(const std::shared_ptr<StreamState>& stream, Operation operation) {
  Machine& m = machine();
  // The legacy default stream and the blocking streams of its device wait for one another;
  // non-blocking streams (all of slidegrade's) wait for nothing they are not told to.
  if (stream->legacy) {
    for (CUstream_st* s : m.streams)
      if (s->state->blocking && s->state->device == stream->device)
        operation.waits.push_back({s->state, s->state->enqueued});
  } else if (stream->blocking) {
    const auto& legacy = m.legacy[stream->device];
    operation.waits.push_back({legacy, legacy->enqueued});
  }
  stream->queue.push_back(std::move(operation));
  return {stream, ++stream->enqueued};
}

void run_until(const StreamPoint& point) {
  std::lock_guard lock(machine_mutex());
  StreamState& s = *point.stream;
  if (s.completed >= point.sequence) return;
  DeviceAccessWindow window;  // one pair of mprotect calls for the whole run, not one per operation
  while (s.completed < point.sequence) {
    Operation op = std::move(s.queue.front());
    s.queue.pop_front();
    for (const StreamPoint& w : op.waits) run_until(w);
    op.run();
    ++s.completed;
  }
}

void run_all(int device) {
  std::lock_guard lock(machine_mutex());
  Machine& m = machine();
  std::vector<std::shared_ptr<StreamState>> all;
  for (int d = 0; d < kDeviceCount; ++d)
    if (device < 0 || d == device) all.push_back(m.legacy[d]);
  for (CUstream_st* s : m.streams)
    if (device < 0 || s->state->device == device) all.push_back(s->state);
  DeviceAccessWindow window;
  for (const auto& s : all) run_until({s, s->enqueued});
}

}  // namespace sg_emu

using namespace sg_emu;

namespace {

std::lock_guard<std::recursive_mutex> api_lock() { return std::lock_guard<std::recursive_mutex>(machine_mutex()); }

cudaError_t ok() { return cudaSuccess; }

bool valid_device(int device) { return device >= 0 && device < kDeviceCount; }

}  // namespace

// ---- Devices ----------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  (void)machine();
  *count = kDeviceCount;
  return ok();
}
cudaError_t cudaGetDevice(int* device) {
  *device = t_current_device;
  return ok();
}
cudaError_t cudaSetDevice(int device) {
  if (!valid_device(device))
    return set_error(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + "): the emulated machine has " +
                                                 std::to_string(kDeviceCount) + " devices");
  t_current_device = device;
  return ok();
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!valid_device(device)) return set_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties");
  const Personality& c = personality();
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "emulated CUDA device: %s", c.name);
  prop->totalGlobalMem = c.total_memory;
  prop->sharedMemPerBlock = c.shared_per_block;
  prop->regsPerBlock = c.registers_per_block;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = c.max_threads_per_block;
  prop->maxThreadsDim[0] = 1024, prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647, prop->maxGridSize[1] = 65535, prop->maxGridSize[2] = 65535;
  prop->clockRate = c.clock_khz;
  prop->major = c.major, prop->minor = c.minor;
  prop->multiProcessorCount = c.multiprocessors;
  prop->maxThreadsPerMultiProcessor = c.max_threads_per_multiprocessor;
  prop->sharedMemPerMultiprocessor = c.shared_per_multiprocessor;
  prop->sharedMemPerBlockOptin = c.shared_per_block_optin;
  prop->l2CacheSize = c.l2_bytes;
  prop->memoryBusWidth = c.bus_width;
  return ok();
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!valid_device(device)) return set_error(cudaErrorInvalidDevice, "cudaDeviceGetAttribute");
  const Personality& c = personality();
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = c.max_threads_per_block; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(c.shared_per_block); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = c.multiprocessors; break;
    case cudaDevAttrComputeCapabilityMajor: *value = c.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = c.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(c.shared_per_block_optin); break;
    default: return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
  }
  return ok();
}
cudaError_t cudaDeviceSynchronize() {
  run_all(t_current_device);
  return ok();
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  auto lock = api_lock();
  const Personality& c = personality();
  const Arena& a = machine().arenas[t_current_device];
  *total_bytes = c.total_memory;
  *free_bytes = c.total_memory - c.context_bytes - std::min(a.in_use, c.total_memory - c.context_bytes);
  return ok();
}

// ---- Device and pinned memory ---------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  auto lock = api_lock();
  *ptr = nullptr;
  const int device = t_current_device;
  Arena& a = machine().arenas[device];
  const Personality& c = personality();
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  const size_t needed = rounded + kRedZone;
  if (a.in_use + needed > c.total_memory - c.context_bytes)
    return set_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes on cuda:" +
                                                    std::to_string(device) + " (the emulated " + c.name + ")");
  for (auto it = a.free.begin(); it != a.free.end(); ++it) {
    if (it->second < needed) continue;
    const uintptr_t begin = it->first;
    const size_t rest = it->second - needed;
    a.free.erase(it);
    if (rest) a.free[begin + needed] = rest;
    a.live[begin] = bytes;
    a.in_use += needed;
    a.high_water = std::max(a.high_water, begin + needed - a.base);
    void* p = reinterpret_cast<void*>(begin);
    // Only the new block's pages become writable for the fill (not the whole arena).
    const uintptr_t first_page = begin & ~uintptr_t(4095), end_page = (begin + needed + 4095) & ~uintptr_t(4095);
    if (machine().window_depth == 0 &&
        mprotect(reinterpret_cast<void*>(first_page), end_page - first_page, PROT_READ | PROT_WRITE) != 0)
      return set_error(cudaErrorMemoryAllocation, "cudaMalloc: mprotect failed");
    SG_EMU_UNPOISON(p, bytes);
    std::memset(p, 0xff, bytes);
    SG_EMU_POISON(static_cast<char*>(p) + bytes, needed - bytes);
    if (machine().window_depth == 0) mprotect(reinterpret_cast<void*>(first_page), end_page - first_page, PROT_NONE);
    *ptr = p;
    return ok();
  }
  return set_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes: cuda:" +
                                                  std::to_string(device) + "'s memory is too fragmented");
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return ok();
  auto lock = api_lock();
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  const int device = arena_device(p);
  if (device < 0 || !machine().arenas[device].live.count(p))
    return set_error(cudaErrorInvalidValue, "cudaFree(" + hex(ptr) + "): not a pointer cudaMalloc returned (" +
                                                describe(classify(ptr)) + ")");
  run_all(device);  // as on a GPU, cudaFree waits for the device's work
  Arena& a = machine().arenas[device];
  const size_t bytes = a.live[p];
  a.live.erase(p);
  const size_t needed = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment + kRedZone;
  a.in_use -= needed;
  SG_EMU_POISON(ptr, needed);
  if (needed >= (size_t(1) << 20)) madvise(ptr, needed, MADV_DONTNEED);
  // Coalesce with the free neighbours.
  uintptr_t begin = p;
  size_t size = needed;
  auto next = a.free.lower_bound(begin);
  if (next != a.free.end() && next->first == begin + size) {
    size += next->second;
    next = a.free.erase(next);
  }
  if (next != a.free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      begin = prev->first;
      size += prev->second;
      a.free.erase(prev);
    }
  }
  a.free[begin] = size;
  return ok();
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  auto lock = api_lock();
  const size_t rounded = (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096;
  *ptr = std::aligned_alloc(4096, rounded);
  if (!*ptr) return set_error(cudaErrorMemoryAllocation, "cudaMallocHost of " + std::to_string(bytes) + " bytes");
  machine().pinned[reinterpret_cast<uintptr_t>(*ptr)] = bytes;
  return ok();
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) { return cudaMallocHost(ptr, bytes); }
cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return ok();
  auto lock = api_lock();
  auto& pinned = machine().pinned;
  if (!pinned.count(reinterpret_cast<uintptr_t>(ptr)))
    return set_error(cudaErrorInvalidValue, "cudaFreeHost(" + hex(ptr) + "): not a pointer cudaMallocHost returned (" +
                                                describe(classify(ptr)) + ")");
  run_all(-1);  // as on a GPU: copies from or to it may still be queued
  pinned.erase(reinterpret_cast<uintptr_t>(ptr));
  std::free(ptr);
  return ok();
}

namespace {

// Checks one side of a copy or memset: device memory must lie inside one allocation.
bool check_side(const char* call, const char* side, const void* p, size_t bytes, const MemoryRange& r) {
  if (r.kind != MemoryKind::device) return true;
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (r.end == 0 || a + bytes > r.end) {
    set_error(cudaErrorInvalidValue, std::string(call) + ": the " + side + " " + hex(p) + " + " + std::to_string(bytes) +
                                         " bytes is not inside one cudaMalloc block of cuda:" +
                                         std::to_string(r.device));
    return false;
  }
  return true;
}

cudaError_t copy(const char* call, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream,
                 bool synchronous) {
  auto lock = api_lock();
  if (bytes == 0) return ok();
  if (!dst || !src) return set_error(cudaErrorInvalidValue, std::string(call) + ": a null pointer");
  auto s = stream_state(stream, call);
  if (!s) return cudaErrorInvalidResourceHandle;
  const MemoryRange d = classify(dst), from = classify(src);
  const bool dst_device = d.kind == MemoryKind::device, src_device = from.kind == MemoryKind::device;
  const auto mismatch = [&](const char* expected_dst, const char* expected_src) {
    return set_error(cudaErrorInvalidValue, std::string(call) + ": the kind says " + expected_src + " -> " +
                                                expected_dst + ", but the source is " + describe(from) +
                                                " and the destination " + describe(d));
  };
  switch (kind) {
    case cudaMemcpyHostToDevice:
      if (src_device || !dst_device) return mismatch("device", "host");
      break;
    case cudaMemcpyDeviceToHost:
      if (!src_device || dst_device) return mismatch("host", "device");
      break;
    case cudaMemcpyDeviceToDevice:
      if (!src_device || !dst_device) return mismatch("device", "device");
      break;
    case cudaMemcpyHostToHost:
      if (src_device || dst_device) return mismatch("host", "host");
      break;
    case cudaMemcpyDefault: break;
    default: return set_error(cudaErrorInvalidMemcpyDirection, call);
  }
  if (!check_side(call, "destination", dst, bytes, d) || !check_side(call, "source", src, bytes, from))
    return cudaErrorInvalidValue;
  Operation op;
  op.what = std::string(call) + " of " + std::to_string(bytes) + " bytes";
  // Pageable host memory is read now (the driver stages it before returning); pinned host memory
  // and device memory are read when the copy runs on its stream.
  if (from.kind == MemoryKind::unknown_host) {
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + bytes);
    op.run = [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); };
  } else {
    op.run = [dst, src, bytes] { std::memmove(dst, src, bytes); };
  }
  const StreamPoint point = enqueue(s, std::move(op));
  // A copy into pageable host memory returns only when it is done, as on a GPU.
  if (synchronous || d.kind == MemoryKind::unknown_host) run_until(point);
  return ok();
}

cudaError_t fill(const char* call, void* dst, int value, size_t bytes, cudaStream_t stream) {
  auto lock = api_lock();
  if (bytes == 0) return ok();
  auto s = stream_state(stream, call);
  if (!s) return cudaErrorInvalidResourceHandle;
  const MemoryRange d = classify(dst);
  if (d.kind != MemoryKind::device)
    return set_error(cudaErrorInvalidValue, std::string(call) + ": the destination " + hex(dst) + " is " + describe(d) +
                                                ", not device memory");
  if (!check_side(call, "destination", dst, bytes, d)) return cudaErrorInvalidValue;
  Operation op;
  op.what = std::string(call) + " of " + std::to_string(bytes) + " bytes";
  op.run = [dst, value, bytes] { std::memset(dst, value, bytes); };
  enqueue(s, std::move(op));
  return ok();
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy("cudaMemcpy", dst, src, bytes, kind, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return copy("cudaMemcpyAsync", dst, src, bytes, kind, stream, false);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return fill("cudaMemset", dst, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  return fill("cudaMemsetAsync", dst, value, bytes, stream);
}

// ---- Streams ----------------------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  auto lock = api_lock();
  auto* s = new CUstream_st;
  s->state = std::make_shared<StreamState>();
  s->state->device = t_current_device;
  s->state->blocking = !(flags & cudaStreamNonBlocking);
  machine().streams.insert(s);
  *stream = s;
  return ok();
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto lock = api_lock();
  if (!stream || !machine().streams.count(stream))
    return set_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a live stream");
  run_until({stream->state, stream->state->enqueued});  // its work still happens, as on a GPU
  machine().streams.erase(stream);
  delete stream;
  return ok();
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  auto lock = api_lock();
  auto s = stream_state(stream, "cudaStreamSynchronize");
  if (!s) return cudaErrorInvalidResourceHandle;
  run_until({s, s->enqueued});
  return ok();
}
cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  auto lock = api_lock();
  auto s = stream_state(stream, "cudaStreamWaitEvent");
  if (!s) return cudaErrorInvalidResourceHandle;
  if (!event || !machine().events.count(event))
    return set_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: not a live event");
  if (!event->state->point) return ok();  // an event never recorded has completed
  Operation op;
  op.what = "cudaStreamWaitEvent";
  op.waits.push_back(*event->state->point);
  op.run = [] {};
  enqueue(s, std::move(op));
  return ok();
}

// ---- Events -----------------------------------------------------------------------------------------
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  auto lock = api_lock();
  auto* e = new CUevent_st;
  e->device = t_current_device;
  e->timing = !(flags & cudaEventDisableTiming);
  machine().events.insert(e);
  *event = e;
  return ok();
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  auto lock = api_lock();
  if (!event || !machine().events.erase(event))
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not a live event");
  delete event;
  return ok();
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  auto lock = api_lock();
  if (!event || !machine().events.count(event))
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: not a live event");
  auto s = stream_state(stream, "cudaEventRecord");
  if (!s) return cudaErrorInvalidResourceHandle;
  if (s->device != event->device)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: an event of cuda:" + std::to_string(event->device) +
                                                         " recorded on a stream of cuda:" + std::to_string(s->device));
  Operation op;
  op.what = "cudaEventRecord";
  auto state = event->state;
  op.run = [state] { state->time_ms = now_ms(); };
  event->state->point = enqueue(s, std::move(op));
  return ok();
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  auto lock = api_lock();
  if (!event || !machine().events.count(event))
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: not a live event");
  if (event->state->point) run_until(*event->state->point);
  return ok();
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  auto lock = api_lock();
  for (cudaEvent_t e : {start, end}) {
    if (!e || !machine().events.count(e))
      return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: not a live event");
    if (!e->timing)
      return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event created with cudaEventDisableTiming");
    if (!e->state->point || e->state->point->stream->completed < e->state->point->sequence)
      return set_error(cudaErrorNotReady, "cudaEventElapsedTime: an event that has not completed");
  }
  *ms = float(end->state->time_ms - start->state->time_ms);
  return ok();
}

// ---- Errors -----------------------------------------------------------------------------------------
cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }
const char* cudaGetErrorString(cudaError_t error) {
  if (error != cudaSuccess && error == t_detail_code) return t_detail.c_str();
  return error_text(error);
}
const char* cudaGetErrorName(cudaError_t error) { return error_name(error); }

// ---- Kernels --------------------------------------------------------------------------------------
// The architecture a kernel "was compiled for" is the __CUDA_ARCH__ of its translation unit: files
// that branch on it are compiled once per personality (arch_variants/), the others serve every card.
cudaError_t sg_emu::function_attributes(cudaFuncAttributes* attributes, const void* kernel, int compiled_arch) {
  if (!kernel) return set_error(cudaErrorInvalidValue, "cudaFuncGetAttributes: a null kernel");
  *attributes = cudaFuncAttributes{};
  const int arch = compiled_arch ? compiled_arch : personality().arch();
  attributes->ptxVersion = arch / 10;
  attributes->binaryVersion = arch / 10;
  attributes->maxThreadsPerBlock = personality().max_threads_per_block;
  attributes->numRegs = 32;
  return cudaSuccess;
}
