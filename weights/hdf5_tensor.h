#pragma once
// Tensors and scalar attributes in HDF5 objects: one dataset per tensor with its dtype kept,
// and typed attributes (string, int64, uint64, f64). The building blocks of our weight files
// (weights/weight_file.h) and training checkpoints (weights/checkpoint_file.h).
//
// Dataset encoding of each dtype (the dataset also carries a string attribute dtype = "f32", ...):
//   f32  -> H5T_IEEE_F32LE      f16 -> IEEE half (1-5-10, what h5py reads as float16)
//   bf16 -> H5T_STD_U16LE (raw bfloat16 bits; the dtype attribute says "bf16")
//   i32  -> H5T_STD_I32LE       u8  -> H5T_STD_U8LE
// Memory and file types are the same on little-endian hosts, so HDF5 copies the bits unchanged.
//
// Every function takes the file's path only to name it in error messages.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "weights/checksummed_hdf5.h"
#include "weights/hdf5_file.h"

namespace sg::h5 {

// HDF5 prints its own error stack to stderr by default; we throw our own messages instead.
void silence_errors();

// Opens an existing HDF5 file for reading, verifying its checksum first when it has one
// (weights/checksummed_hdf5.h). Errors: no such file, not HDF5, checksum mismatch, truncated or
// damaged. `checksum`, when given, receives what was verified.
Hdf5Handle open_file_for_reading(const std::string& path, FileChecksum* checksum = nullptr);

// Groups: create (with intermediate groups) or open one; `where` names the file in errors.
Hdf5Handle create_group(hid_t parent, const std::string& name, const std::string& where);
Hdf5Handle open_group(hid_t parent, const std::string& name, const std::string& where);
bool has_link(hid_t parent, const std::string& name);

// Names of the datasets (or groups) directly under `group`, in name order.
std::vector<std::string> child_datasets(hid_t group, const std::string& where);
std::vector<std::string> child_groups(hid_t group, const std::string& where);

// The shape and dtype of a stored tensor.
struct TensorInfo {
  Shape shape;
  DType dtype = DType::f32;
};

// Writes `tensor` (any device; copied to the host) as dataset `name` directly under `parent`.
// Throws when the tensor is undefined.
void write_tensor(hid_t parent, const std::string& name, const Tensor& tensor, const std::string& where);
TensorInfo tensor_info(hid_t parent, const std::string& name, const std::string& where);
// A new CPU tensor with the file's shape and dtype.
Tensor read_tensor(hid_t parent, const std::string& name, const std::string& where);
// Reads into an existing tensor (any device) of the file's shape. The dtype must be the file's,
// or, with convert_floating, any floating dtype when the file's is floating (via f32, rounding
// to nearest even).
void read_tensor_into(hid_t parent, const std::string& name, Tensor& into, bool convert_floating,
                      const std::string& where);

// Attributes on an object (a file, group or dataset).
bool has_attribute(hid_t object, const std::string& name);
std::vector<std::string> attribute_names(hid_t object, const std::string& where);
void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& where);
void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& where);
void write_uint_attribute(hid_t object, const std::string& name, uint64_t value, const std::string& where);
void write_double_attribute(hid_t object, const std::string& name, double value, const std::string& where);
// Readers throw, naming the file and the attribute, when it is absent or of another kind.
// read_int/uint accept any integer attribute that fits; read_double any integer or float.
std::string read_string_attribute(hid_t object, const std::string& name, const std::string& where);
int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& where);
uint64_t read_uint_attribute(hid_t object, const std::string& name, const std::string& where);
double read_double_attribute(hid_t object, const std::string& name, const std::string& where);
// True when the attribute is stored as an integer (false for float or string).
bool attribute_is_integer(hid_t object, const std::string& name, const std::string& where);

// "f16" -> DType::f16; throws naming `where` for an unknown name.
DType parse_dtype(const std::string& name, const std::string& where);

}  // namespace sg::h5
