#include "core/tensor.h"

#include <cstring>

#include "core/cuda/runtime.h"

namespace sg {

Storage::Storage(size_t bytes, Device device, const char* what, cuda::StreamHandle stream)
    : bytes_(bytes), device_(device), stream_(device.is_cuda() ? stream : nullptr) {
  if (bytes) data_ = allocator_for(device).allocate(bytes, what, stream_);
}

Storage::~Storage() {
  if (data_) allocator_for(device_).deallocate(data_, bytes_, stream_, also_used_on_);
}

void Storage::record_stream(cuda::StreamHandle stream) {
  if (!device_.is_cuda() || stream == stream_) return;
  for (cuda::StreamHandle s : also_used_on_)
    if (s == stream) return;
  also_used_on_.push_back(stream);
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device, const char* what) {
  return empty(std::move(shape), dtype, device, StreamScope::current(device), what);
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device, const Stream& stream, const char* what) {
  SG_CHECK(!stream.handle() || !device.is_cuda() || stream.device() == device, "Tensor::empty: a stream of ",
           stream.device().str(), " for a tensor on ", device.str());
  return empty(std::move(shape), dtype, device, stream.handle(), what);
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device, cuda::StreamHandle stream, const char* what) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device, what, stream);
  return t;
}

void Tensor::record_stream(const Stream& stream) const {
  if (storage_) storage_->record_stream(stream.handle());
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device, const Stream& stream) {
  Tensor t = empty(std::move(shape), dtype, device, stream);
  t.zero_(stream);
  if (device.is_cuda()) stream.synchronize(device);
  return t;
}

Tensor Tensor::from_floats(const std::vector<float>& values, Shape shape, DType dtype) {
  SG_CHECK(int64_t(values.size()) == shape.numel(), "Tensor::from_floats: ", values.size(),
           " values for shape ", shape.str());
  Tensor t = empty(std::move(shape), dtype);
  switch (dtype) {
    case DType::f32: std::memcpy(t.data(), values.data(), t.nbytes()); break;
    case DType::f16:
      for (size_t i = 0; i < values.size(); ++i) t.data_as<Half>()[i] = from_acc<Half>(values[i]);
      break;
    case DType::bf16:
      for (size_t i = 0; i < values.size(); ++i) t.data_as<BFloat16>()[i] = from_acc<BFloat16>(values[i]);
      break;
    case DType::u8:
      for (size_t i = 0; i < values.size(); ++i) t.data_as<uint8_t>()[i] = uint8_t(values[i]);
      break;
    case DType::i32:
      for (size_t i = 0; i < values.size(); ++i) t.data_as<int32_t>()[i] = int32_t(values[i]);
      break;
  }
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  SG_CHECK(shape.numel() == numel(), "Tensor::reshape: cannot view ", str(), " as ", shape.str());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::to(Device device, const Stream& stream) const {
  Tensor t = empty(shape_, dtype_, device, stream);
  t.copy_from(*this, stream);
  return t;
}

void Tensor::copy_from(const Tensor& src, const Stream& stream) {
  SG_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "Tensor::copy_from: source ", src.str(),
           " does not match destination ", str());
  if (nbytes() == 0) return;
  // Meta tensors have no values (core/meta_device.h): a copy onto one does nothing, off one is a bug.
  SG_CHECK(!src.device().is_meta() || device().is_meta(), "Tensor::copy_from: ", src.str(),
           " has no values to copy to ", device().str());
  if (device().is_meta()) return;
  if (device().is_cpu() && src.device().is_cpu()) {
    std::memcpy(data(), src.data(), nbytes());
    return;
  }
  // The copy goes to the CUDA side's device (a default stream is that device's legacy stream).
  const DeviceGuard on_device(device().is_cuda() ? device() : src.device());
  // A read-back on the default stream waits for every stream of the device first (tensor.h).
  if (src.device().is_cuda() && device().is_cpu() && stream.handle() == nullptr)
    cuda::device_synchronize(src.device().index);
  cuda::memcpy_async(data(), src.data(), nbytes(), stream.handle());
  // A copy that touches pageable host memory must be complete before the host reads or frees it.
  if (device().is_cpu() || src.device().is_cpu()) cuda::stream_synchronize(stream.handle());
}

void Tensor::zero_(const Stream& stream) {
  if (nbytes() == 0 || device().is_meta()) return;
  if (device().is_cpu()) {
    std::memset(data(), 0, nbytes());
    return;
  }
  const DeviceGuard on_device(device());
  cuda::memset_async(data(), 0, nbytes(), stream.handle());
}

std::vector<float> Tensor::to_floats(const Stream& stream) const {
  SG_CHECK(!device().is_meta(), "Tensor::to_floats: ", str(), " has no values (a meta tensor: shapes only)");
  const Tensor host = device().is_cpu() ? *this : to(Device::cpu(), stream);
  std::vector<float> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (dtype_) {
      case DType::f32: out[i] = host.data_as<float>()[i]; break;
      case DType::f16: out[i] = to_acc(host.data_as<Half>()[i]); break;
      case DType::bf16: out[i] = to_acc(host.data_as<BFloat16>()[i]); break;
      case DType::u8: out[i] = float(host.data_as<uint8_t>()[i]); break;
      case DType::i32: out[i] = float(host.data_as<int32_t>()[i]); break;
    }
  }
  return out;
}

std::string Tensor::str() const {
  return detail::concat(dtype_name(dtype_), shape_.str(), " on ", device().str());
}

}  // namespace sg
