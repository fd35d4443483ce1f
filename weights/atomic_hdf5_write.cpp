#include "weights/atomic_hdf5_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "core/error.h"
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

// fsync on a path opened read-only (POSIX allows fsync on a read-only descriptor).
int sync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return errno;
  const int status = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return status;
}

}  // namespace

std::filesystem::path temporary_path_for(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp-" + std::to_string(::getpid()));
}

void write_atomically(const std::filesystem::path& path, const std::function<void(hid_t file)>& fill) {
  silence_errors();
  const std::filesystem::path temporary = temporary_path_for(path);
  try {
    FileId file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    SG_CHECK(file.get() >= 0, path.string(), ": cannot create the temporary file ", temporary.string(),
             " (does the folder exist, and is it writable?)");
    fill(file.get());
    SG_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, path.string(), ": flushing ", temporary.string(),
             " failed (disk full?)");
    SG_CHECK(file.close(), path.string(), ": closing ", temporary.string(), " failed (disk full?)");
    const int sync_error = sync_path(temporary, O_RDONLY);
    SG_CHECK(sync_error == 0, path.string(), ": fsync of ", temporary.string(), " failed: ", std::strerror(sync_error));
    std::error_code rename_error;
    std::filesystem::rename(temporary, path, rename_error);
    SG_CHECK(!rename_error, path.string(), ": cannot rename ", temporary.string(), " to it: ", rename_error.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
  // Persist the rename itself. Best effort: some file systems refuse fsync on a folder, and the
  // file is already complete under its final name.
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  (void)sync_path(folder, O_RDONLY | O_DIRECTORY);
}

}  // namespace sg::h5
