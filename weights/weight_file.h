#pragma once
// slidegrade weight files: a model's parameters and buffers by hierarchical name, in HDF5.
//
// On-disk layout, format_version 1 (HDF5; inspect with h5dump or h5py):
//   /                       root attributes:
//                             format         = "slidegrade-weights"  (variable-length UTF-8 string)
//                             format_version = 1                     (int64)
//                             arch_config    = the caller's text describing the architecture (string)
//                             any user attributes                    (strings; names other than the above)
//   /model/<name>           one dataset per parameter and buffer; <name> is the hierarchical name
//                           exactly ("blocks.3.1.dw.weight": dots kept, no sub-groups), the dataset's
//                           shape is the tensor's shape (NHWC / OHWI as in core/tensor.h), and its
//                           string attribute dtype is "f32" | "f16" | "bf16" | "i32" | "u8".
//                           HDF5 types: f32 IEEE_F32LE, f16 IEEE half (h5py float16), bf16 STD_U16LE
//                           holding the raw bfloat16 bits, i32 STD_I32LE, u8 STD_U8LE.
//                           f32 master weights are stored as f32.
// Training checkpoints (weights/checkpoint_file.h) are weight files with three more groups,
// /optimizer, /scheduler and /training, so any checkpoint also loads as weights.
//
// The HDF5 data starts at byte 512: the first 512 bytes are an HDF5 user block holding a
// whole-file CRC-32 (weights/checksummed_hdf5.h). Every load verifies it before HDF5 parses the
// file and refuses a damaged or truncated file; files without the header (h5py, Keras, slidegrade
// before checksums) load unverified. h5py and HDF5 tools read both kinds as usual.
// Files are written atomically (weights/atomic_hdf5_write.h, core/atomic_file.h).
// Loading checks every name, shape and dtype before touching the model, and reports all the
// mismatches in one error that names the file.
#include <hdf5.h>

#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "weights/checksummed_hdf5.h"

namespace sg {

inline constexpr const char* kWeightFormat = "slidegrade-weights";
inline constexpr int64_t kWeightFormatVersion = 1;

// A tensor under its hierarchical name. Tensor shares storage, so loading into a NamedTensor
// fills the model's own tensor.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Collects {name, value} of parameters then buffers (nn::Parameter / nn::Buffer, or pointers
// to them: anything with .name and .value).
template <class Parameters, class Buffers>
std::vector<NamedTensor> named_tensors(const Parameters& parameters, const Buffers& buffers) {
  std::vector<NamedTensor> out;
  const auto add = [&out](const auto& item) {
    if constexpr (std::is_pointer_v<std::decay_t<decltype(item)>>)
      out.push_back({item->name, item->value});
    else
      out.push_back({item.name, item.value});
  };
  for (const auto& p : parameters) add(p);
  for (const auto& b : buffers) add(b);
  return out;
}

struct WeightAttributes {
  std::string arch_config;                        // e.g. "arch=b0 outputs=6 activation=swish ..."
  std::map<std::string, std::string> user;        // anything else (source, commit, date, ...)
};

// What a file holds, without loading tensors.
struct StoredTensor {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
};
struct WeightFileInfo {
  int64_t format_version = 0;
  WeightAttributes attributes;
  std::vector<StoredTensor> tensors;  // name order
  bool is_checkpoint = false;         // has /training
  h5::FileChecksum checksum;          // verified on opening; .present is false for files without one
};

struct LoadOptions {
  // Partial: load what matches, report the rest (fine-tuning from another head) instead of throwing.
  bool partial = false;
  // Convert between f32, f16 and bf16 when the file's dtype differs from the model's.
  bool convert_floating = false;
  // When set, the file's arch_config must equal it (a checkpoint from another arch is an error).
  std::optional<std::string> expected_arch_config;
};

struct LoadReport {
  std::vector<std::string> loaded;      // model order
  std::vector<std::string> skipped;     // in the file, not in the model (name order)
  std::vector<std::string> missing;     // in the model, not in the file (model order)
  std::vector<std::string> mismatched;  // "name: file has [..], model expects [..]" (partial mode)
};

// Writes the tensors (any device) and attributes to `path` atomically. Throws sg::Error naming
// the file on duplicate or invalid names, an undefined tensor, or an I/O failure; then `path`
// is left as it was.
void save_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                  const WeightAttributes& attributes);

// Loads the file into the tensors by name (see LoadOptions). Strict mode throws one sg::Error
// listing every missing, unexpected, mis-shaped and mis-typed tensor, without changing any tensor.
LoadReport load_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                        const LoadOptions& options = {});

WeightFileInfo read_weight_file_info(const std::string& path);

namespace weights_detail {
// Shared with checkpoint_file.cpp: the root attributes and /model of an open file.
void write_model(hid_t file, const std::string& path, const std::vector<NamedTensor>& tensors,
                 const WeightAttributes& attributes);
// Checks format and version (and the arch when asked); throws naming `path`.
void check_format(hid_t file, const std::string& path, const LoadOptions& options);
LoadReport load_model(hid_t file, const std::string& path, const std::vector<NamedTensor>& tensors,
                      const LoadOptions& options);
}  // namespace weights_detail

}  // namespace sg
