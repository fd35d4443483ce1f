#pragma once
// C++ results as NumPy arrays without a copy: the array points into the C++ object's memory and
// owns it through a capsule, so the object lives as long as the array (or a view of it) does.
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/tensor.h"
#include "data/image.h"

namespace sg::python {

namespace nb = nanobind;

template <class T>
nb::capsule owning_capsule(T* object) {
  return nb::capsule(object, [](void* p) noexcept { delete static_cast<T*>(p); });
}

// An RGB (or single-channel) image as uint8 [height, width, channels].
inline nb::ndarray<nb::numpy, uint8_t, nb::ndim<3>> image_array(data::Image image) {
  auto* owned = new data::Image(std::move(image));
  const size_t shape[3] = {size_t(owned->height), size_t(owned->width), size_t(owned->channels)};
  return nb::ndarray<nb::numpy, uint8_t, nb::ndim<3>>(owned->pixels.data(), 3, shape, owning_capsule(owned));
}

// A float32 CPU tensor of any rank as float32 with its shape.
inline nb::ndarray<nb::numpy, float> float_tensor_array(Tensor tensor) {
  SG_CHECK(tensor.dtype() == DType::f32 && tensor.device().is_cpu(),
           "float_tensor_array: expected a float32 CPU tensor");
  auto* owned = new Tensor(std::move(tensor));
  std::vector<size_t> shape;
  for (const int64_t d : owned->shape().dims()) shape.push_back(size_t(d));
  return nb::ndarray<nb::numpy, float>(owned->data(), shape.size(), shape.data(), owning_capsule(owned));
}

}  // namespace sg::python
