#include "weights/atomic_hdf5_write.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

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

// fsync on a path opened read-only (POSIX allows fsync on a read-only descriptor).
int sync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return errno;
  const int status = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return status;
}

// Removes "<path>.tmp-<pid>" files left by writers that were killed (their pid no longer
// exists). Best effort: a live writer's file (kill(pid, 0) succeeds or says EPERM) is kept.
void remove_stale_temporaries(const std::filesystem::path& path) {
  const std::string prefix = path.filename().string() + ".tmp-";
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code error;
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    std::filesystem::remove(it->path(), ignored);
  }
}

}  // namespace

std::filesystem::path temporary_path_for(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp-" + std::to_string(::getpid()));
}

void write_atomically(const std::filesystem::path& path, const std::function<void(hid_t file)>& fill) {
  silence_errors();
  const std::filesystem::path temporary = temporary_path_for(path);
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
    FileId file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, creation.get(), access.get()));
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
  remove_stale_temporaries(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SG_CHECK(fd >= 0, path.string(), ": cannot create the temporary file ", temporary.string(), ": ",
           std::strerror(errno), " (does the folder exist, and is it writable?)");
  int error = 0;
  for (size_t done = 0; done < image.size() && error == 0;) {
    const ssize_t n = ::write(fd, image.data() + done, image.size() - done);
    if (n > 0) {
      done += size_t(n);
    } else if (n < 0 && errno != EINTR) {
      error = errno;
    }
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(detail::concat(path.string(), ": writing ", temporary.string(), " failed: ", std::strerror(error),
                               " (disk full?); ", path.string(), " is left as it was"));
  }
  std::error_code rename_error;
  std::filesystem::rename(temporary, path, rename_error);
  if (rename_error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(
        detail::concat(path.string(), ": cannot rename ", temporary.string(), " to it: ", rename_error.message()));
  }
  // Persist the rename itself. Best effort: some file systems refuse fsync on a folder, and the
  // file is already complete under its final name.
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  (void)sync_path(folder, O_RDONLY | O_DIRECTORY);
}

}  // namespace sg::h5
