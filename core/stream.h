#pragma once
// Streams and events. Every op takes a Stream; CPU ops run synchronously and ignore it.
// A default-constructed Stream is the device's default (legacy) stream. Streams made by
// Stream::create are non-blocking: the legacy stream does not wait for them, so work on one
// stream that reads what another produced must be ordered by an Event (or a synchronize).
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
  static Stream create(Device device) {
    Stream s;
    s.device_ = device;
    if (device.is_cuda()) {
      s.handle_ = cuda::stream_create(device.index);
      s.owned_ = true;
    }
    return s;
  }
  ~Stream() {
    if (owned_) cuda::stream_destroy(handle_);
  }
  Stream(Stream&& other) noexcept { swap(other); }
  Stream& operator=(Stream&& other) noexcept {
    Stream tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cuda::StreamHandle handle() const { return handle_; }
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
