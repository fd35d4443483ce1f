#pragma once
// Streams and events. Every op takes a Stream; CPU ops run synchronously and ignore it.
// A default-constructed Stream is the device's default (legacy) stream. Streams made by
// Stream::create are non-blocking: the legacy stream does not wait for them, so work on one
// stream that reads what another produced must be ordered by an Event (or a synchronize).
//
// Which stream a CUDA tensor's memory belongs to (core/allocator.h, "Streams"): an allocation
// names its stream (Tensor::empty(..., stream), Tensor::zeros / to with a stream), or takes the
// calling thread's current stream, set for a scope by StreamScope, or the device's default
// stream when no scope is open. Code that queues a block of work on one stream opens a scope
// for it (nn::EfficientNet::forward / backward for the Context's stream, TrainStep::micro_batch)
// so that every tensor it makes belongs to that stream.
#include <optional>
#include <utility>

#include "core/cuda/runtime.h"
#include "core/device.h"

namespace sg {

// Makes a CUDA device current for the guard's lifetime and puts the caller's device back after;
// nothing for the CPU. Every op's dispatch holds one for the device of its tensors
// (kernels/check.h), so a launch, a legacy-stream copy or a scratch allocation goes to the
// tensors' device whatever device the caller had current, and the caller's stays current.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device device) {
    if (device.is_cuda()) guard_.emplace(device.index);
  }

 private:
  std::optional<cuda::DeviceGuard> guard_;
};

class Stream {
 public:
  Stream() = default;  // the default stream
  // A new non-blocking stream on `device` (CUDA); on the CPU the default stream.
  static Stream create(Device device);
  // Waits for the stream's queued work first: the caching allocator may still hold blocks whose
  // last use was on this stream, and treats a stream that no longer exists as finished.
  ~Stream();
  Stream(Stream&& other) noexcept { swap(other); }
  Stream& operator=(Stream&& other) noexcept {
    Stream tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cuda::StreamHandle handle() const { return handle_; }
  // The device of a created stream; the CPU for a default-constructed one (the default stream of
  // whichever device the work is on).
  Device device() const { return device_; }
  // Waits for all work queued on this stream (of `device` when this is a default stream: the
  // legacy stream is per device, so `device` is made current for the call).
  void synchronize(Device device) const {
    if (!device.is_cuda()) return;
    const DeviceGuard guard(device);
    cuda::stream_synchronize(handle_);
  }

 private:
  void swap(Stream& other) noexcept {
    std::swap(device_, other.device_);
    std::swap(handle_, other.handle_);
    std::swap(owned_, other.owned_);
  }
  Device device_;
  cuda::StreamHandle handle_ = nullptr;
  bool owned_ = false;
};

// Makes `stream` the calling thread's current stream for the scope's lifetime: CUDA tensors
// made without a stream (Tensor::empty(shape, dtype, device)) on the stream's device belong to
// it. Scopes nest; per thread; cheap (two pointer writes). A default stream's scope means the
// default stream on every device.
class StreamScope {
 public:
  explicit StreamScope(const Stream& stream);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

  // The calling thread's current stream on `device`: the innermost scope's when it is a stream
  // of `device`, else the default stream (nullptr).
  static cuda::StreamHandle current(Device device);

 private:
  Device device_;
  cuda::StreamHandle handle_;
  const StreamScope* parent_;
};

namespace detail {
// The streams that exist: Stream::create registers a handle, ~Stream removes it (after
// synchronising) before destroying the stream. The caching allocator records events on a block's
// streams when the block is freed; holding this lock (shared) keeps every registered stream alive
// meanwhile. A stream that is no longer registered has finished its work.
class LiveStreamsLock {
 public:
  LiveStreamsLock();
  ~LiveStreamsLock();
  LiveStreamsLock(const LiveStreamsLock&) = delete;
  LiveStreamsLock& operator=(const LiveStreamsLock&) = delete;
  // True for a registered stream and for the default stream (nullptr), which always exists.
  bool exists(cuda::StreamHandle stream) const;
};
}  // namespace detail

// A CUDA event (with timing); on the CPU an Event records nothing and waits for nothing.
class Event {
 public:
  explicit Event(Device device, bool timing = true) : device_(device) {
    if (device.is_cuda()) handle_ = cuda::event_create(device.index, timing);
  }
  ~Event() {
    if (handle_) cuda::event_destroy(handle_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // On a default stream: the legacy stream of this event's device.
  void record(const Stream& stream) {
    if (!handle_) return;
    const DeviceGuard guard(device_);
    cuda::event_record(handle_, stream.handle());
  }
  void synchronize() {
    if (handle_) cuda::event_synchronize(handle_);
  }
  // Makes `stream` wait (on the device) until this event has happened; a default stream is the
  // legacy stream of this event's device.
  void block(const Stream& stream) {
    if (!handle_) return;
    const DeviceGuard guard(device_);
    cuda::stream_wait_event(stream.handle(), handle_);
  }
  static float elapsed_ms(const Event& start, const Event& end) {
    return cuda::event_elapsed_ms(start.handle_, end.handle_);
  }

 private:
  Device device_;
  cuda::EventHandle handle_ = nullptr;
};

}  // namespace sg
