// libFuzzer target: our weight and checkpoint files (weights/weight_file.h, checkpoint_file.h).
// read_weight_file_info, then load_weights (partial, converting dtypes) into tensors shaped as
// the file says, then load_checkpoint when the file claims to be one: every path that reads a
// file someone handed us. Files that claim shapes too large to allocate are still read for their
// info; only the load is left out (the readers allocate what the model asks for, not the file).
//
// Our files carry a CRC-32 header (weights/checksummed_hdf5.h), so almost every mutation of a seed
// is refused by the checksum before HDF5 sees it. To reach the parser behind it as well, an input
// whose last byte is odd and that is long enough gets a fresh header stamped over its first 512
// bytes (as a writer that means it would); the others reach the checksum check as they are.
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "weights/checkpoint_file.h"
#include "weights/checksummed_hdf5.h"
#include "weights/weight_file.h"

namespace {

// Elements of `shape`, or -1 past `limit` (shapes come from the file: any product may overflow).
int64_t bounded_numel(const sg::Shape& shape, int64_t limit) {
  int64_t n = 1;
  for (int64_t d : shape.dims()) {
    if (d != 0 && n > limit / d) return -1;
    n *= d;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool stamp = size > sg::h5::kChecksumHeaderSize && (data[size - 1] & 1) != 0;
  std::vector<char> bytes(data, data + size);
  if (stamp) {
    try {
      sg::h5::stamp_checksum_header(bytes, "fuzz input");
    } catch (const sg::Error&) {
      return 0;
    }
  }
  const std::string& path = sg::fuzz::write_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "h5");
  return sg::fuzz::run_reader([&] {
    const sg::WeightFileInfo info = sg::read_weight_file_info(path);
    constexpr int64_t kMaxElements = int64_t(1) << 22;
    std::vector<sg::NamedTensor> model;
    int64_t total = 0;
    for (const sg::StoredTensor& stored : info.tensors) {
      const int64_t n = bounded_numel(stored.shape, kMaxElements);
      if (n < 0 || total + n > kMaxElements) return;
      total += n;
      model.push_back({stored.name, sg::Tensor::empty(stored.shape, stored.dtype)});
    }
    sg::LoadOptions options;
    options.partial = true;
    options.convert_floating = true;
    sg::load_weights(path, model, options);
    if (info.is_checkpoint) sg::load_checkpoint(path, model);
  });
}
