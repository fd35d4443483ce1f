#pragma once
// Argument checks shared by every op's tensor-level entry point. Each failure names the op,
// the argument, what it is and what was expected.
#include <initializer_list>
#include <string_view>

#include "core/error.h"
#include "core/tensor.h"

namespace sg::check {

inline void defined(std::string_view op, std::string_view name, const Tensor& t) {
  SG_CHECK(t.defined(), op, ": ", name, " is undefined");
}

inline void shape(std::string_view op, std::string_view name, const Tensor& t, const Shape& expected) {
  defined(op, name, t);
  SG_CHECK(t.shape() == expected, op, ": ", name, " has shape ", t.shape().str(), ", expected ", expected.str());
}

inline void rank(std::string_view op, std::string_view name, const Tensor& t, int expected) {
  defined(op, name, t);
  SG_CHECK(t.rank() == expected, op, ": ", name, " has shape ", t.shape().str(), ", expected rank ", expected);
}

inline void dtype(std::string_view op, std::string_view name, const Tensor& t, DType expected) {
  defined(op, name, t);
  SG_CHECK(t.dtype() == expected, op, ": ", name, " is ", dtype_name(t.dtype()), ", expected ", dtype_name(expected));
}

inline void floating(std::string_view op, std::string_view name, const Tensor& t) {
  defined(op, name, t);
  SG_CHECK(is_floating(t.dtype()), op, ": ", name, " is ", dtype_name(t.dtype()), ", expected f32, f16 or bf16");
}

// Every tensor of the op on one device; returns that device (the CPU when none is defined).
inline Device devices_match(std::string_view op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    SG_CHECK(t->device() == first->device(), op, ": tensors on different devices (", first->str(), " and ",
             t->str(), ")");
  }
  return first ? first->device() : Device::cpu();
}

// Every tensor of the op on one device, made current until the returned guard goes: the op's
// kernels, its legacy-stream work, its scratch allocations and cuBLAS calls then go to the device
// of its tensors whatever device the caller has current, and the caller's comes back after. Each
// op's dispatch holds one for its whole body (nodiscard: a guard dropped at once guards nothing):
//   const DeviceGuard on_device = check::same_device(op, {&x, &y});
[[nodiscard]] inline DeviceGuard same_device(std::string_view op, std::initializer_list<const Tensor*> tensors) {
  return DeviceGuard(devices_match(op, tensors));
}

inline void same_dtype(std::string_view op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    SG_CHECK(t->dtype() == first->dtype(), op, ": mixed dtypes (", first->str(), " and ", t->str(), ")");
  }
}

}  // namespace sg::check
