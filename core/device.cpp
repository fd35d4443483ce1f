#include "core/device.h"

#include <cstdio>
#include <mutex>

#include "core/cuda/runtime.h"
#include "core/error.h"

namespace sg {

int cuda_device_count() { return cuda::device_count(); }
bool cuda_available() { return cuda::device_count() > 0; }
std::string cuda_unavailable_reason() { return cuda::unavailable_reason(); }
std::string cuda_device_name(int index) { return cuda::device_name(index); }

Device default_device() {
  if (cuda_available()) return Device::cuda(0);
  static std::once_flag said;
  std::call_once(said, [] {
    std::fprintf(stderr, "slidegrade: no usable GPU (%s); running on the CPU\n",
                 cuda_unavailable_reason().c_str());
  });
  return Device::cpu();
}

Device parse_device(const std::string& text) {
  if (text == "auto") return default_device();
  if (text == "cpu") return Device::cpu();
  int index = 0;
  if (text == "cuda") {
    index = 0;
  } else if (text.rfind("cuda:", 0) == 0 && text.size() > 5 &&
             text.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(text.substr(5));
  } else {
    throw Error(detail::concat("device \"", text, "\": expected cpu, cuda, cuda:N or auto"));
  }
  SG_CHECK(index < cuda_device_count(), "device \"", text, "\" is not available: ",
           cuda_available() ? detail::concat(cuda_device_count(), " CUDA device(s) present")
                            : cuda_unavailable_reason());
  return Device::cuda(index);
}

}  // namespace sg
