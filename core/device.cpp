#include "core/device.h"

#include <cstdio>
#include <mutex>

#include "core/cuda/device_code.h"
#include "core/cuda/runtime.h"
#include "core/error.h"

namespace sg {

int cuda_device_count() { return cuda::device_count(); }
bool cuda_available() { return cuda::device_count() > 0; }
std::string cuda_unavailable_reason() { return cuda::unavailable_reason(); }
std::string cuda_device_name(int index) { return cuda::device_name(index); }

namespace {
// The emulated CUDA device of the test build (tests/emulated_cuda) is a test device: it runs only
// where asked for by name (--device cuda), never as "a GPU if there is one".
bool is_emulated_device(int index) { return cuda_device_name(index).rfind("emulated CUDA device", 0) == 0; }
}  // namespace

Device default_device() {
  std::string reason;
  if (!cuda_available())
    reason = cuda_unavailable_reason();
  else if (is_emulated_device(0))
    reason = "cuda:0 is the emulated CUDA device of this test build; use --device cuda to run on it";
  else
    reason = cuda::missing_code_reason(0);  // a card this binary holds no code for
  if (reason.empty()) return Device::cuda(0);
  static std::once_flag said;
  std::call_once(said, [&reason] { std::fprintf(stderr, "slidegrade: no usable GPU (%s); running on the CPU\n", reason.c_str()); });
  return Device::cpu();
}

std::optional<Device> parse_device_spelling(const std::string& text) {
  if (text == "auto") return std::nullopt;
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  const bool numbered = text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
                        text.find_first_not_of("0123456789", 5) == std::string::npos;
  if (!numbered) throw Error(detail::concat("unknown device '", text, "' (expected cpu, cuda, cuda:N or auto)"));
  return Device::cuda(std::stoi(text.substr(5)));
}

Device parse_device(const std::string& text) {
  const std::optional<Device> spelled = parse_device_spelling(text);
  if (!spelled) return default_device();
  if (spelled->is_cpu()) return *spelled;
  const int index = spelled->index;
  SG_CHECK(index < cuda_device_count(), "device \"", text, "\" is not available: ",
           cuda_available() ? detail::concat(cuda_device_count(), " CUDA device(s) present")
                            : cuda_unavailable_reason());
  const std::string missing = cuda::missing_code_reason(index);
  SG_CHECK(missing.empty(), "device \"", text, "\": ", missing);
  return Device::cuda(index);
}

}  // namespace sg
