// libFuzzer target: weights/keras_import.h on Keras 2 .h5 and Keras 3 .weights.h5 layouts:
// is_keras_file, inspect_keras_file (which lists problems instead of throwing for layout faults)
// and read_keras_weights (which builds the network the file implies and checks every tensor).
#include "fuzz/fuzz_support.h"
#include "weights/keras_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = sg::fuzz::write_input(data, size, "h5");
  return sg::fuzz::run_reader([&] {
    if (!sg::keras::is_keras_file(path)) return;
    sg::keras::inspect_keras_file(path);
    sg::keras::read_keras_weights(path);
  });
}
