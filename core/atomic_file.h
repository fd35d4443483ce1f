#pragma once
// Writing a file so that it appears under its name whole or not at all: the one way every
// slidegrade writer (CSV files, PNGs, weight and checkpoint files, pyramid TIFFs, tile-cache
// entries) puts a file on disk.
//
// Why: a run can be killed at any moment (SIGKILL, the OOM killer, a cluster's time limit) and a
// machine can lose power. Writing the final path in place would then leave it empty or torn: an
// empty submission, a folds file that silently lists half the slides, a checkpoint that no longer
// loads. So each write goes to a temporary file in the same folder as the target (rename is atomic
// only within one file system), named ".<name>.tmp-<pid>-<counter>" (hidden, one scheme for all
// writers, so a leftover is recognisable and never mistaken for data), then:
//   1. fsync the temporary: without it a power cut can persist the rename before the data, which
//      leaves a zero-length file under the final name (ext4, XFS with delayed allocation);
//   2. rename it over the target: readers see the old file or the new one, never a mix;
//   3. fsync the folder: without it the rename itself can be lost in a power cut.
// Every system call's result is checked; a failure throws sg::Error naming the target, the step
// and strerror, removes the temporary, and leaves the target as it was. A writer killed before the
// rename leaves only its temporary behind; remove_abandoned_temporaries() clears those.
// (The target is replaced, not written through: a symbolic link at the target becomes a file.)
#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg {

// One atomic write in progress (RAII). Construction creates the temporary file; write() appends
// bytes to it, or a library that opens files by name itself (libtiff) writes temporary(); commit()
// makes it the target. Destroyed without a successful commit() (an exception on the way), it
// removes the temporary and the target keeps its previous content (or stays absent).
class AtomicFile {
 public:
  // Throws sg::Error naming `target` when the temporary cannot be created (a missing or read-only
  // folder).
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::filesystem::path& target() const { return target_; }
  // The temporary file's path (it exists, empty, from construction until commit()). A library may
  // open, truncate and write it by name; it must have closed it before commit().
  const std::filesystem::path& temporary() const { return temporary_; }

  // Appends to the temporary, retrying short writes and EINTR. Throws sg::Error on failure (a full
  // disk); the temporary is removed then.
  void write(std::string_view bytes);
  void write(const void* data, size_t size) { write(std::string_view(static_cast<const char*>(data), size)); }

  // fsync the temporary, rename it over the target, fsync the folder. Throws sg::Error naming the
  // failed step; before the rename the temporary is removed and the target is as it was, after it
  // (only the folder's fsync can fail then) the new file is in place but may not survive a power cut.
  void commit();

 private:
  // Removes the temporary and throws "<target>: <step> failed: <strerror>; <target> is left as it was".
  [[noreturn]] void fail(const std::string& step, int error);
  void discard() noexcept;

  std::filesystem::path target_;
  std::filesystem::path temporary_;
  int fd_ = -1;
  bool finished_ = false;  // renamed into place, or failed and cleaned up: nothing left to undo
};

// The whole file in one call: AtomicFile, write(bytes), commit().
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);

// A fresh temporary name for `target` (".<name>.tmp-<pid>-<counter>" in its folder), unique in this
// process and among processes; nothing is created. AtomicFile uses it; so does the HDF5 writer to
// name the in-memory file it builds before writing it out.
std::filesystem::path unique_temporary_path(const std::filesystem::path& target);

// The pid of the process that wrote `candidate` when it is a temporary of a write to `target`
// (same folder, the naming scheme above); nullopt for any other file.
std::optional<pid_t> temporary_writer(const std::filesystem::path& candidate, const std::filesystem::path& target);

// The temporaries of writes to `target` now in its folder, any writer (sorted).
std::vector<std::filesystem::path> temporaries_of(const std::filesystem::path& target);

// Removes the temporaries of writes to `target` whose writer is no longer running (killed before
// its rename); a live writer's file is kept. Best effort: returns how many were removed. (A pid
// can be reused, so a dead writer's file may be kept a while; it never hides the target. The pid
// is looked up on this machine: do not call it on a folder that writers on other machines share.)
int remove_abandoned_temporaries(const std::filesystem::path& target);

}  // namespace sg
