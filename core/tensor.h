#pragma once
// Tensor: a contiguous, row-major block of one dtype on one device, shared by reference.
// Activations are NHWC ([N, H, W, C]); conv weights are OHWI ([Cout, kh, kw, Cin/groups]).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/stream.h"

namespace sg {

// The memory behind one or more tensors; returns itself to its allocator when the last
// tensor using it goes. On CUDA it remembers the streams it is used on (core/allocator.h,
// "Streams"): the one it was allocated for and those added by record_stream.
class Storage {
 public:
  // `stream`: the stream the memory is for (CUDA; ignored on the CPU).
  Storage(size_t bytes, Device device, const char* what, cuda::StreamHandle stream);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  cuda::StreamHandle stream() const { return stream_; }
  // Not thread-safe: one thread records a tensor's streams, as one thread queues its work.
  void record_stream(cuda::StreamHandle stream);

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  cuda::StreamHandle stream_ = nullptr;
  std::vector<cuda::StreamHandle> also_used_on_;  // other streams (record_stream); usually none
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage

  // Uninitialised memory (filled with a NaN pattern in debug builds would hide nothing: tests
  // poison outputs themselves). On CUDA the memory is for the calling thread's current stream
  // (StreamScope, core/stream.h), the device's default stream when no scope is open.
  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu(), const char* what = "tensor");
  // The same for `stream` (a created stream must be of `device`): kernels queued on `stream` may
  // use it, and it is safe to drop the tensor as soon as they are queued.
  static Tensor empty(Shape shape, DType dtype, Device device, const Stream& stream, const char* what = "tensor");
  // The same for a raw stream handle (the CUDA launchers' scratch).
  static Tensor empty(Shape shape, DType dtype, Device device, cuda::StreamHandle stream, const char* what);
  // Allocated for `stream` and zeroed on it.
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::cpu(), const Stream& stream = {});
  // A CPU tensor of the given dtype from float values (rounded to nearest even for f16/bf16).
  static Tensor from_floats(const std::vector<float>& values, Shape shape, DType dtype = DType::f32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i]; }
  int rank() const { return shape_.rank(); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }

  void* data() const { return storage_ ? static_cast<char*>(storage_->data()) + offset_ : nullptr; }
  // Typed access; throws when T is not this tensor's storage type.
  template <class T>
  T* data_as() const {
    SG_CHECK(DTypeOf<T>::value == dtype_, "Tensor::data_as: tensor is ", dtype_name(dtype_), ", asked for ",
             dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(data());
  }

  // Same storage, new shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // Tells the caching allocator that work on `stream` uses this tensor's memory, besides the
  // stream it was allocated for: when the memory is freed, later users on other streams wait for
  // that work too (core/allocator.h, "Streams"). Needed for a tensor made on one stream and read
  // or written on another (the loader's copy stream -> the compute stream); storage-wide, so
  // views share it. Nothing on the CPU or for an undefined tensor.
  void record_stream(const Stream& stream) const;
  // A copy on `device` (same dtype), allocated for `stream`; synchronous with respect to the host.
  Tensor to(Device device, const Stream& stream = {}) const;
  // Copies src into this tensor (same shape and dtype, any devices), queued on `stream` after the
  // work already there. A copy from a CUDA tensor to the host on the default stream first waits
  // for the whole device: the legacy default stream does not wait for the non-blocking streams
  // that Stream::create makes, so without it a read-back could overtake the kernels that produce
  // the data. Pass the producing stream to wait for that stream only. A copy between CUDA tensors
  // on the default stream is ordered with the legacy stream's work only.
  void copy_from(const Tensor& src, const Stream& stream = {});
  void zero_(const Stream& stream = {});
  // The values as floats on the host (any floating or integer dtype). A CUDA tensor is read after
  // the work queued on `stream`: give the stream that produced it (the training step reads its
  // loss so). The default waits for every stream of the tensor's device (see copy_from), which is
  // always right and costs a device-wide wait.
  std::vector<float> to_floats(const Stream& stream = {}) const;

  std::string str() const;  // "f16[2, 3, 4] on cuda:0"

 private:
  Shape shape_;
  DType dtype_ = DType::f32;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
};

}  // namespace sg
