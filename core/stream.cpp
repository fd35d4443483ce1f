#include "core/stream.h"

#include <mutex>
#include <shared_mutex>
#include <unordered_set>

namespace sg {
namespace {

struct Registry {
  std::shared_mutex mutex;
  std::unordered_set<cuda::StreamHandle> streams;
};

// Never destroyed: tensors (and Streams) of static objects may go after any other static.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

thread_local const StreamScope* innermost_stream_scope = nullptr;

}  // namespace

Stream Stream::create(Device device) {
  Stream s;
  s.device_ = device;
  if (device.is_cuda()) {
    s.handle_ = cuda::stream_create(device.index);
    s.owned_ = true;
    try {
      std::unique_lock lock(registry().mutex);
      registry().streams.insert(s.handle_);
    } catch (...) {
      cuda::stream_destroy(s.handle_);
      s.owned_ = false;
      throw;
    }
  }
  return s;
}

Stream::~Stream() {
  if (!owned_) return;
  // cudaStreamDestroy returns before the stream's work is done; the allocator must be able to
  // treat a stream it cannot find as finished, so finish it first.
  try {
    cuda::stream_synchronize(handle_);
  } catch (...) {  // a failed launch earlier on this stream: it was reported where it happened
  }
  {
    std::unique_lock lock(registry().mutex);
    registry().streams.erase(handle_);
  }
  cuda::stream_destroy(handle_);
}

StreamScope::StreamScope(const Stream& stream)
    : device_(stream.device()), handle_(stream.handle()), parent_(innermost_stream_scope) {
  innermost_stream_scope = this;
}

StreamScope::~StreamScope() { innermost_stream_scope = parent_; }

cuda::StreamHandle StreamScope::current(Device device) {
  const StreamScope* scope = innermost_stream_scope;
  if (!scope || !scope->handle_ || scope->device_ != device) return nullptr;
  return scope->handle_;
}

namespace detail {

LiveStreamsLock::LiveStreamsLock() { registry().mutex.lock_shared(); }
LiveStreamsLock::~LiveStreamsLock() { registry().mutex.unlock_shared(); }

bool LiveStreamsLock::exists(cuda::StreamHandle stream) const {
  return stream == nullptr || registry().streams.count(stream) != 0;
}

}  // namespace detail
}  // namespace sg
