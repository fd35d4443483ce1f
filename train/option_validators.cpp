#include "train/option_validators.h"

#include "core/allocator.h"
#include "core/device.h"
#include "nn/checkpointing.h"
#include "nn/efficientnet.h"

namespace sg::train {

CLI::Validator arch_choice() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        try {
          text = nn::efficientnet_config(text).arch;  // "efficientnet-B0" -> "b0"
          return {};
        } catch (const Error& e) {
          return e.what();
        }
      },
      "b0..b7|lite0..lite4", "arch");
}

CLI::Validator checkpoint_choice() {
  return parsed_by([](const std::string& text) { (void)nn::parse_checkpoint_policy(text); },
                   "none|every|every:K|blocks:I,J|auto", "checkpointing");
}

CLI::Validator device_choice() {
  return parsed_by([](const std::string& text) { (void)parse_device_spelling(text); }, "auto|cpu|cuda|cuda:N",
                   "device");
}

CLI::Validator memory_limit_choice() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty()) return {};
        try {
          (void)parse_bytes(text);
          return {};
        } catch (const Error& e) {
          return "'" + text + "' is not a size: " + e.what() + " (empty: no cap)";
        }
      },
      "SIZE", "memory_limit");
}

}  // namespace sg::train
