#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace sg {

// meta: shapes and dtypes without memory or values (core/meta_device.h); never a --device word.
enum class DeviceType : uint8_t { cpu, cuda, meta };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  static Device meta() { return {DeviceType::meta, 0}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool is_meta() const { return type == DeviceType::meta; }
  bool operator==(const Device&) const = default;
  std::string str() const {
    if (is_meta()) return "meta";
    return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
  }
};

// True when this binary was built with CUDA and a usable GPU is present.
bool cuda_available();
// Number of usable CUDA devices (0 without CUDA, without a driver or without a GPU).
int cuda_device_count();
// Why CUDA is not available ("" when it is): the CUDA error, or "built without CUDA".
std::string cuda_unavailable_reason();
// The GPU's name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
std::string cuda_device_name(int index);

// cuda:0 when available, else the CPU. The first call that falls back prints one line to
// stderr saying so and why.
Device default_device();
// The device words, one grammar for every --device flag and `device` key: "cpu", "cuda" (=
// cuda:0), "cuda:N" or "auto". Checks the spelling alone (no GPU needed): nothing for "auto", else
// the device named; throws naming the text and the accepted forms.
std::optional<Device> parse_device_spelling(const std::string& text);
// parse_device_spelling, then "auto" -> default_device(), and a CUDA device must be usable;
// errors name the text.
Device parse_device(const std::string& text);

}  // namespace sg
