#include "weights/hdf5_file.h"

#include "core/error.h"
#include "weights/checksummed_hdf5.h"

namespace sg {
namespace {

// HDF5 prints a stack of errors to stderr by default; we report our own messages instead.
void silence_hdf5_errors() {
  static const bool silenced = [] { return H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0; }();
  (void)silenced;
}

}  // namespace

Hdf5File::Hdf5File(std::string path, Mode mode) : path_(std::move(path)) {
  silence_hdf5_errors();
  if (mode == Mode::read) {
    file_ = h5::open_verified_hdf5(path_);  // checks the checksum of files that have one
  } else {
    file_ = Hdf5Handle(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  }
  SG_CHECK(file_.valid(), path_, ": HDF5 could not ", mode == Mode::read ? "open" : "create", " the file");
}

bool Hdf5File::has(const std::string& name) const {
  // Walk the path one link at a time: H5Lexists fails on a missing intermediate group.
  std::string prefix;
  size_t start = name.front() == '/' ? 1 : 0;
  while (start <= name.size()) {
    const size_t slash = name.find('/', start);
    prefix.push_back('/');
    prefix.append(name, start, slash == std::string::npos ? std::string::npos : slash - start);
    if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

FloatArray Hdf5File::read_floats(const std::string& name) const {
  SG_CHECK(has(name), path_, ": no dataset \"", name, "\"");
  Hdf5Handle dataset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  SG_CHECK(dataset.valid(), path_, ": \"", name, "\" is not a dataset");
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type.get());
  SG_CHECK(type_class == H5T_FLOAT || type_class == H5T_INTEGER, path_, ": dataset \"", name,
           "\" is not numeric");
  Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  SG_CHECK(rank >= 0, path_, ": dataset \"", name, "\" has no simple shape");
  std::vector<hsize_t> dims(size_t(rank), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  FloatArray out;
  size_t count = 1;
  for (hsize_t d : dims) {
    out.shape.push_back(int64_t(d));
    count *= size_t(d);
  }
  out.values.resize(count);
  if (count)
    SG_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()) >= 0, path_,
             ": reading dataset \"", name, "\" failed");
  return out;
}

void Hdf5File::write_floats(const std::string& name, const std::vector<int64_t>& shape, const float* values) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Hdf5Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  Hdf5Handle link_props(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(link_props.get(), 1);
  Hdf5Handle dataset(H5Dcreate2(file_.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), link_props.get(), H5P_DEFAULT,
                                H5P_DEFAULT),
                     H5Dclose);
  SG_CHECK(dataset.valid(), path_, ": cannot create dataset \"", name, "\"");
  SG_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0, path_,
           ": writing dataset \"", name, "\" failed");
}

int64_t Hdf5File::read_int_attribute(const std::string& object, const std::string& attribute) const {
  SG_CHECK(H5Aexists_by_name(file_.get(), object.c_str(), attribute.c_str(), H5P_DEFAULT) > 0, path_, ": \"", object,
           "\" has no attribute \"", attribute, "\"");
  Hdf5Handle attr(H5Aopen_by_name(file_.get(), object.c_str(), attribute.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  int64_t value = 0;
  SG_CHECK(attr.valid() && H5Aread(attr.get(), H5T_NATIVE_INT64, &value) >= 0, path_, ": attribute \"", attribute,
           "\" of \"", object, "\" is not an integer");
  return value;
}

void Hdf5File::write_int_attribute(const std::string& object, const std::string& attribute, int64_t value) {
  Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Hdf5Handle attr(H5Acreate_by_name(file_.get(), object.c_str(), attribute.c_str(), H5T_STD_I64LE, space.get(),
                                    H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose);
  SG_CHECK(attr.valid() && H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) >= 0, path_, ": cannot write attribute \"",
           attribute, "\" on \"", object, "\"");
}

std::string Hdf5File::read_string_attribute(const std::string& object, const std::string& attribute) const {
  SG_CHECK(H5Aexists_by_name(file_.get(), object.c_str(), attribute.c_str(), H5P_DEFAULT) > 0, path_, ": \"", object,
           "\" has no attribute \"", attribute, "\"");
  Hdf5Handle attr(H5Aopen_by_name(file_.get(), object.c_str(), attribute.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Hdf5Handle type(H5Aget_type(attr.get()), H5Tclose);
  SG_CHECK(H5Tget_class(type.get()) == H5T_STRING, path_, ": attribute \"", attribute, "\" of \"", object,
           "\" is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    char* text = nullptr;
    Hdf5Handle memtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memtype.get(), H5T_VARIABLE);
    H5Tset_cset(memtype.get(), H5Tget_cset(type.get()));  // HDF5 does not convert ASCII <-> UTF-8
    SG_CHECK(H5Aread(attr.get(), memtype.get(), &text) >= 0, path_, ": cannot read attribute \"", attribute, "\"");
    std::string value = text ? text : "";
    Hdf5Handle space(H5Aget_space(attr.get()), H5Sclose);
    H5Dvlen_reclaim(memtype.get(), space.get(), H5P_DEFAULT, &text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  SG_CHECK(H5Aread(attr.get(), type.get(), value.data()) >= 0, path_, ": cannot read attribute \"", attribute, "\"");
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

}  // namespace sg
