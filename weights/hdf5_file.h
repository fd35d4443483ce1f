#pragma once
// A small RAII layer over the HDF5 C API: open a file, read and write numeric datasets as
// float arrays, read attributes. Every failure names the file and the item.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sg {

// Owns one HDF5 identifier and closes it with the matching H5*close.
class Hdf5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Hdf5Handle() = default;
  Hdf5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hdf5Handle() { reset(); }
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = H5I_INVALID_HID; }
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

struct FloatArray {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

class Hdf5File {
 public:
  // read verifies the file's checksum when it has one (weights/checksummed_hdf5.h); create
  // truncates an existing file and writes plain HDF5 without a checksum (tests, foreign layouts).
  enum class Mode { read, create };
  Hdf5File(std::string path, Mode mode);

  const std::string& path() const { return path_; }
  // True when `name` (a path such as "conv/x") is a dataset or group in the file.
  bool has(const std::string& name) const;
  // Reads any integer or floating dataset, converted to float by HDF5.
  FloatArray read_floats(const std::string& name) const;
  // Writes a float32 dataset, making intermediate groups.
  void write_floats(const std::string& name, const std::vector<int64_t>& shape, const float* values);
  // Integer and string attributes on an object ("/" for the file).
  int64_t read_int_attribute(const std::string& object, const std::string& attribute) const;
  void write_int_attribute(const std::string& object, const std::string& attribute, int64_t value);
  std::string read_string_attribute(const std::string& object, const std::string& attribute) const;

 private:
  std::string path_;
  Hdf5Handle file_;
};

}  // namespace sg
