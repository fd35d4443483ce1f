#include "weights/hdf5_tensor.h"

#include <bit>
#include <filesystem>
#include <type_traits>

#include "core/error.h"

namespace sg::h5 {
namespace {

static_assert(std::endian::native == std::endian::little,
              "weight files store little-endian data and read it without conversion");

// "/model/blocks.0.weight": the object's path in the file, for messages.
std::string path_of(hid_t parent, const std::string& name) {
  std::string base;
  const ssize_t length = H5Iget_name(parent, nullptr, 0);
  if (length > 0) {
    base.resize(size_t(length) + 1);
    H5Iget_name(parent, base.data(), base.size());
    base.resize(size_t(length));
  }
  if (name.empty() || name == ".") return base.empty() ? "/" : base;
  if (base.empty() || base == "/") return "/" + name;
  return base + "/" + name;
}

// The IEEE binary16 type (sign 15, exponent 10..14 with bias 15, mantissa 0..9), as h5py makes it.
Hdf5Handle make_half_type() {
  Hdf5Handle type(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  SG_CHECK(type.valid() && H5Tset_fields(type.get(), 15, 10, 5, 0, 10) >= 0 && H5Tset_size(type.get(), 2) >= 0 &&
               H5Tset_ebias(type.get(), 15) >= 0,
           "HDF5: cannot make the float16 type");
  return type;
}

// The HDF5 type of a dtype, in the file and in memory (the same on little-endian hosts).
Hdf5Handle type_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return Hdf5Handle(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    case DType::f16: return make_half_type();
    case DType::bf16: return Hdf5Handle(H5Tcopy(H5T_STD_U16LE), H5Tclose);
    case DType::i32: return Hdf5Handle(H5Tcopy(H5T_STD_I32LE), H5Tclose);
    case DType::u8: return Hdf5Handle(H5Tcopy(H5T_STD_U8LE), H5Tclose);
  }
  throw Error("HDF5: unknown dtype");
}

std::string describe_type(hid_t type) {
  const H5T_class_t type_class = H5Tget_class(type);
  const size_t bytes = H5Tget_size(type);
  const char* kind = type_class == H5T_FLOAT     ? "float"
                     : type_class == H5T_INTEGER ? (H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned integer" : "integer")
                     : type_class == H5T_STRING  ? "string"
                                                 : "non-numeric";
  return detail::concat(kind, " of ", bytes, " bytes");
}

bool is_half_layout(hid_t type) {
  size_t sign = 0, exponent_pos = 0, exponent_size = 0, mantissa_pos = 0, mantissa_size = 0;
  if (H5Tget_fields(type, &sign, &exponent_pos, &exponent_size, &mantissa_pos, &mantissa_size) < 0) return false;
  return sign == 15 && exponent_pos == 10 && exponent_size == 5 && mantissa_pos == 0 && mantissa_size == 10 &&
         H5Tget_ebias(type) == 15;
}

// Whether the stored HDF5 type is the encoding of `dtype` above.
bool type_matches(hid_t type, DType dtype) {
  const H5T_class_t type_class = H5Tget_class(type);
  const size_t bytes = H5Tget_size(type);
  const bool is_unsigned = type_class == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE;
  const bool little = H5Tget_order(type) == H5T_ORDER_LE || bytes == 1;
  if (!little) return false;
  switch (dtype) {
    case DType::f32: return type_class == H5T_FLOAT && bytes == 4 && H5Tequal(type, H5T_IEEE_F32LE) > 0;
    case DType::f16: return type_class == H5T_FLOAT && bytes == 2 && is_half_layout(type);
    case DType::bf16: return type_class == H5T_INTEGER && bytes == 2 && is_unsigned;
    case DType::i32: return type_class == H5T_INTEGER && bytes == 4 && !is_unsigned;
    case DType::u8: return type_class == H5T_INTEGER && bytes == 1 && is_unsigned;
  }
  return false;
}

Hdf5Handle open_dataset(hid_t parent, const std::string& name, const std::string& where) {
  SG_CHECK(has_link(parent, name), where, ": no dataset \"", path_of(parent, name), "\"");
  Hdf5Handle dataset(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose);
  SG_CHECK(dataset.valid(), where, ": \"", path_of(parent, name), "\" is not a dataset");
  return dataset;
}

Hdf5Handle open_attribute(hid_t object, const std::string& name, const std::string& where) {
  SG_CHECK(has_attribute(object, name), where, ": \"", path_of(object, ""), "\" has no attribute \"", name, "\"");
  Hdf5Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  SG_CHECK(attribute.valid(), where, ": cannot open attribute \"", name, "\" of \"", path_of(object, ""), "\"");
  return attribute;
}

// Creates (replacing any old one) a scalar attribute of file type `file_type` and writes `value`.
void write_scalar_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type,
                            const void* value, const std::string& where) {
  if (has_attribute(object, name))
    SG_CHECK(H5Adelete(object, name.c_str()) >= 0, where, ": cannot replace attribute \"", name, "\"");
  Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Hdf5Handle attribute(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  SG_CHECK(attribute.valid() && H5Awrite(attribute.get(), memory_type, value) >= 0, where,
           ": cannot write attribute \"", name, "\" on \"", path_of(object, ""), "\"");
}

// Reads a numeric scalar attribute of class `wanted` (or integer when reading a double).
template <class T>
T read_numeric_attribute(hid_t object, const std::string& name, hid_t memory_type, bool accept_float,
                         const std::string& where, const char* kind) {
  Hdf5Handle attribute = open_attribute(object, name, where);
  Hdf5Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type.get());
  Hdf5Handle space(H5Aget_space(attribute.get()), H5Sclose);
  const bool ok_class = type_class == H5T_INTEGER || (accept_float && type_class == H5T_FLOAT);
  SG_CHECK(ok_class && H5Sget_simple_extent_npoints(space.get()) == 1, where, ": attribute \"", name, "\" of \"",
           path_of(object, ""), "\" is a ", describe_type(type.get()), ", expected one ", kind);
  T value{};
  // HDF5 clips out-of-range integers silently: refuse a negative value for an unsigned read.
  if (type_class == H5T_INTEGER && std::is_unsigned_v<T> && H5Tget_sign(type.get()) != H5T_SGN_NONE) {
    int64_t signed_value = 0;
    SG_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &signed_value) >= 0 && signed_value >= 0, where,
             ": attribute \"", name, "\" of \"", path_of(object, ""), "\" is negative, expected ", kind);
  }
  SG_CHECK(H5Aread(attribute.get(), memory_type, &value) >= 0, where, ": cannot read attribute \"", name, "\" of \"",
           path_of(object, ""), "\"");
  return value;
}

std::vector<std::string> children_of_type(hid_t group, H5I_type_t wanted, const std::string& where) {
  H5G_info_t info{};
  SG_CHECK(H5Gget_info(group, &info) >= 0, where, ": cannot list \"", path_of(group, ""), "\"");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    SG_CHECK(length >= 0, where, ": cannot list \"", path_of(group, ""), "\"");
    std::string name(size_t(length) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(size_t(length));
    Hdf5Handle object(H5Oopen(group, name.c_str(), H5P_DEFAULT), H5Oclose);
    if (object.valid() && H5Iget_type(object.get()) == wanted) names.push_back(name);
  }
  return names;
}

}  // namespace

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Hdf5Handle open_file_for_reading(const std::string& path, FileChecksum* checksum) {
  silence_errors();
  return open_verified_hdf5(path, checksum);
}

bool has_link(hid_t parent, const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0;
}

namespace {
// Creation properties without object times: HDF5 would record when each group and dataset was
// made, and two files of identical content would differ.
Hdf5Handle without_times(hid_t property_class) {
  Hdf5Handle properties(H5Pcreate(property_class), H5Pclose);
  SG_CHECK(properties.valid() && H5Pset_obj_track_times(properties.get(), false) >= 0,
           "HDF5: cannot turn off object times");
  return properties;
}
}  // namespace

Hdf5Handle create_group(hid_t parent, const std::string& name, const std::string& where) {
  const Hdf5Handle properties = without_times(H5P_GROUP_CREATE);
  Hdf5Handle group(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, properties.get(), H5P_DEFAULT), H5Gclose);
  SG_CHECK(group.valid(), where, ": cannot create group \"", path_of(parent, name), "\"");
  return group;
}

Hdf5Handle open_group(hid_t parent, const std::string& name, const std::string& where) {
  SG_CHECK(has_link(parent, name), where, ": no group \"", path_of(parent, name), "\"");
  Hdf5Handle group(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose);
  SG_CHECK(group.valid(), where, ": \"", path_of(parent, name), "\" is not a group");
  return group;
}

std::vector<std::string> child_datasets(hid_t group, const std::string& where) {
  return children_of_type(group, H5I_DATASET, where);
}

std::vector<std::string> child_groups(hid_t group, const std::string& where) {
  return children_of_type(group, H5I_GROUP, where);
}

DType parse_dtype(const std::string& name, const std::string& where) {
  for (DType dtype : {DType::f32, DType::f16, DType::bf16, DType::i32, DType::u8})
    if (name == dtype_name(dtype)) return dtype;
  throw Error(detail::concat(where, ": unknown dtype \"", name, "\" (expected f32, f16, bf16, i32 or u8)"));
}

void write_tensor(hid_t parent, const std::string& name, const Tensor& tensor, const std::string& where) {
  SG_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..", where,
           ": tensor name \"", name, "\" cannot be a dataset name (empty or with '/')");
  SG_CHECK(tensor.defined(), where, ": tensor \"", name, "\" is undefined (no storage), cannot write it");
  const Tensor host = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
  const std::vector<hsize_t> dims(host.shape().dims().begin(), host.shape().dims().end());
  Hdf5Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                   H5Sclose);
  Hdf5Handle type = type_of(host.dtype());
  const Hdf5Handle properties = without_times(H5P_DATASET_CREATE);
  Hdf5Handle dataset(H5Dcreate2(parent, name.c_str(), type.get(), space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                     H5Dclose);
  SG_CHECK(space.valid() && dataset.valid(), where, ": cannot create dataset \"", path_of(parent, name), "\"");
  if (host.numel() > 0)
    SG_CHECK(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.data()) >= 0, where,
             ": writing dataset \"", path_of(parent, name), "\" failed");
  write_string_attribute(dataset.get(), "dtype", std::string(dtype_name(host.dtype())), where);
}

TensorInfo tensor_info(hid_t parent, const std::string& name, const std::string& where) {
  Hdf5Handle dataset = open_dataset(parent, name, where);
  const std::string path = path_of(parent, name);
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  TensorInfo info;
  if (has_attribute(dataset.get(), "dtype")) {
    info.dtype = parse_dtype(read_string_attribute(dataset.get(), "dtype", where), where + ": dataset \"" + path + "\"");
    SG_CHECK(type_matches(type.get(), info.dtype), where, ": dataset \"", path, "\" says dtype ",
             dtype_name(info.dtype), " but is stored as a ", describe_type(type.get()));
  } else {
    // Files written by other tools (h5py) may omit the attribute: infer it from the HDF5 type.
    bool found = false;
    for (DType dtype : {DType::f32, DType::f16, DType::i32, DType::u8}) {
      if (type_matches(type.get(), dtype)) {
        info.dtype = dtype;
        found = true;
        break;
      }
    }
    SG_CHECK(found, where, ": dataset \"", path, "\" is a ", describe_type(type.get()),
             ", expected f32, f16, i32, u8 (or uint16 with dtype = \"bf16\")");
  }
  Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  SG_CHECK(rank >= 0, where, ": dataset \"", path, "\" has no simple shape");
  std::vector<hsize_t> dims(size_t(rank), 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  info.shape = Shape(std::vector<int64_t>(dims.begin(), dims.end()));
  return info;
}

Tensor read_tensor(hid_t parent, const std::string& name, const std::string& where) {
  const TensorInfo info = tensor_info(parent, name, where);
  Tensor out = Tensor::empty(info.shape, info.dtype, Device::cpu(), "weight file");
  read_tensor_into(parent, name, out, false, where);
  return out;
}

void read_tensor_into(hid_t parent, const std::string& name, Tensor& into, bool convert_floating,
                      const std::string& where) {
  const std::string path = path_of(parent, name);
  const TensorInfo info = tensor_info(parent, name, where);
  SG_CHECK(into.defined(), where, ": cannot read \"", path, "\" into an undefined tensor");
  SG_CHECK(info.shape == into.shape(), where, ": \"", path, "\": file has ", info.shape.str(), ", expected ",
           into.shape().str());
  const bool convert = info.dtype != into.dtype();
  SG_CHECK(!convert || (convert_floating && is_floating(info.dtype) && is_floating(into.dtype())), where, ": \"", path,
           "\": file has dtype ", dtype_name(info.dtype), ", expected ", dtype_name(into.dtype()));
  // Read the stored bits unchanged into a host tensor of the file's dtype (or straight into `into`).
  const bool direct = !convert && into.device().is_cpu();
  Tensor staged = direct ? into : Tensor::empty(info.shape, info.dtype, Device::cpu(), "weight file");
  if (staged.numel() > 0) {
    Hdf5Handle dataset = open_dataset(parent, name, where);
    Hdf5Handle type = type_of(info.dtype);
    SG_CHECK(H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, staged.data()) >= 0, where,
             ": reading dataset \"", path, "\" failed (truncated or damaged file?)");
  }
  if (direct) return;
  if (convert) staged = Tensor::from_floats(staged.to_floats(), info.shape, into.dtype());
  into.copy_from(staged);
}

bool has_attribute(hid_t object, const std::string& name) {
  return H5Aexists(object, name.c_str()) > 0;
}

std::vector<std::string> attribute_names(hid_t object, const std::string& where) {
  std::vector<std::string> names;
  hsize_t index = 0;
  const auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  SG_CHECK(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, collect, &names) >= 0, where,
           ": cannot list the attributes of \"", path_of(object, ""), "\"");
  return names;
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& where) {
  // Variable-length UTF-8: h5py reads it as str, and no length limit applies.
  Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  SG_CHECK(type.valid() && H5Tset_size(type.get(), H5T_VARIABLE) >= 0 && H5Tset_cset(type.get(), H5T_CSET_UTF8) >= 0,
           where, ": cannot make a string type");
  const char* text = value.c_str();
  write_scalar_attribute(object, name, type.get(), type.get(), &text, where);
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& where) {
  write_scalar_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, where);
}

void write_uint_attribute(hid_t object, const std::string& name, uint64_t value, const std::string& where) {
  write_scalar_attribute(object, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value, where);
}

void write_double_attribute(hid_t object, const std::string& name, double value, const std::string& where) {
  write_scalar_attribute(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, where);
}

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& where) {
  Hdf5Handle attribute = open_attribute(object, name, where);
  Hdf5Handle type(H5Aget_type(attribute.get()), H5Tclose);
  SG_CHECK(H5Tget_class(type.get()) == H5T_STRING, where, ": attribute \"", name, "\" of \"", path_of(object, ""),
           "\" is a ", describe_type(type.get()), ", expected a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Hdf5Handle memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
    // HDF5 does not convert between character sets: read in the stored one (ASCII or UTF-8).
    SG_CHECK(H5Tset_size(memory_type.get(), H5T_VARIABLE) >= 0 &&
                 H5Tset_cset(memory_type.get(), H5Tget_cset(type.get())) >= 0,
             where, ": cannot make a string type");
    char* text = nullptr;
    SG_CHECK(H5Aread(attribute.get(), memory_type.get(), &text) >= 0, where, ": cannot read attribute \"", name,
             "\"");
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  SG_CHECK(H5Aread(attribute.get(), type.get(), value.data()) >= 0, where, ": cannot read attribute \"", name, "\"");
  const size_t end = value.find('\0');
  if (end != std::string::npos) value.resize(end);
  return value;
}

int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& where) {
  return read_numeric_attribute<int64_t>(object, name, H5T_NATIVE_INT64, false, where, "integer");
}

uint64_t read_uint_attribute(hid_t object, const std::string& name, const std::string& where) {
  return read_numeric_attribute<uint64_t>(object, name, H5T_NATIVE_UINT64, false, where, "non-negative integer");
}

double read_double_attribute(hid_t object, const std::string& name, const std::string& where) {
  return read_numeric_attribute<double>(object, name, H5T_NATIVE_DOUBLE, true, where, "number");
}

bool attribute_is_integer(hid_t object, const std::string& name, const std::string& where) {
  Hdf5Handle attribute = open_attribute(object, name, where);
  Hdf5Handle type(H5Aget_type(attribute.get()), H5Tclose);
  return H5Tget_class(type.get()) == H5T_INTEGER;
}

}  // namespace sg::h5
