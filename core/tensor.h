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
// tensor using it goes.
class Storage {
 public:
  Storage(size_t bytes, Device device, const char* what);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage

  // Uninitialised memory (filled with a NaN pattern in debug builds would hide nothing: tests
  // poison outputs themselves).
  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu(), const char* what = "tensor");
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
  // A copy on `device` (same dtype); synchronous with respect to the host.
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
