#include "weights/atomic_hdf5_write.h"

#include <string_view>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "weights/checksummed_hdf5.h"
#include "weights/hdf5_tensor.h"

namespace sg::h5 {
namespace {

// Owns a file id and closes it once, reporting whether HDF5's final write-out succeeded.
class FileId {
 public:
  explicit FileId(hid_t id) : id_(id) {}
  ~FileId() {
    if (id_ >= 0) H5Fclose(id_);
  }
  FileId(const FileId&) = delete;
  FileId& operator=(const FileId&) = delete;
  hid_t get() const { return id_; }
  bool close() {
    const herr_t status = H5Fclose(id_);
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }

 private:
  hid_t id_;
};

}  // namespace

void write_atomically(const std::filesystem::path& path, const std::function<void(hid_t file)>& fill) {
  silence_errors();
  // The in-memory file needs a name no open HDF5 file has (HDF5 refuses to create a file under the
  // name of one it has open, such as `path` itself while a reader holds it); nothing is created
  // under it.
  const std::filesystem::path in_memory_name = unique_temporary_path(path);
  // HDF5 builds the file in memory (the core driver, no backing store) and we write its image
  // ourselves: a failed write (a full disk, a file size limit) is then our error to report,
  // not a half-closed HDF5 file that the library would try to flush again at exit.
  std::vector<char> image;
  {
    const Hdf5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    SG_CHECK(access.valid() && H5Pset_fapl_core(access.get(), size_t(1) << 20, 0) >= 0, path.string(),
             ": cannot set up an in-memory HDF5 file");
    // A 512-byte user block: room for the checksum header (weights/checksummed_hdf5.h).
    const Hdf5Handle creation(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    SG_CHECK(creation.valid() && H5Pset_userblock(creation.get(), kChecksumHeaderSize) >= 0, path.string(),
             ": cannot set up the HDF5 user block");
    // No object times in the root group (nor in any object weights/hdf5_tensor.h creates): the
    // same content gives the same bytes, so `cmp` compares the files of two identical runs.
    SG_CHECK(H5Pset_obj_track_times(creation.get(), false) >= 0, path.string(), ": cannot turn off HDF5 object times");
    FileId file(H5Fcreate(in_memory_name.c_str(), H5F_ACC_TRUNC, creation.get(), access.get()));
    SG_CHECK(file.get() >= 0, path.string(), ": cannot create the in-memory HDF5 file");
    fill(file.get());
    SG_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, path.string(), ": flushing the in-memory file failed");
    const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
    SG_CHECK(size > 0, path.string(), ": cannot get the HDF5 file image");
    // The image HDF5 returns starts at the superblock (its addresses count from byte 512 already):
    // the user block in front of it is ours to fill.
    image.resize(kChecksumHeaderSize + size_t(size));
    SG_CHECK(H5Fget_file_image(file.get(), image.data() + kChecksumHeaderSize, size_t(size)) == size, path.string(),
             ": cannot copy the HDF5 file image");
    SG_CHECK(file.close(), path.string(), ": closing the in-memory HDF5 file failed");
    stamp_checksum_header(image, path.string());
  }
  // Large files: clear what killed writers left before adding another.
  remove_abandoned_temporaries(path);
  write_file_atomically(path, std::string_view(image.data(), image.size()));
}

}  // namespace sg::h5
