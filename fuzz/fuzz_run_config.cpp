// libFuzzer target: train/run_config_cli.h read_run_config (our TOML subset), then
// validate_run_config; a config that validates must survive run_config_toml and read back equal
// (the header's promise), so a round-trip difference is a finding too.
#include <cstdio>
#include <string>

#include "fuzz/fuzz_support.h"
#include "train/run_config_cli.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "toml");
  return sg::fuzz::run_reader([&] {
    const sg::train::RunConfig config = sg::train::read_run_config(path);
    sg::train::validate_run_config(config);
    const std::string text = sg::train::run_config_toml(config);
    sg::fuzz::write_input(reinterpret_cast<const uint8_t*>(text.data()), text.size(), "toml");
    sg::train::RunConfig again;
    try {
      again = sg::train::read_run_config(path);
    } catch (const sg::Error& e) {
      std::fprintf(stderr, "round trip refused: %s\n", e.what());
      __builtin_trap();
    }
    if (!sg::train::run_config_differences(config, again).empty() || again.out != config.out ||
        again.device != config.device)
      __builtin_trap();
  });
}
