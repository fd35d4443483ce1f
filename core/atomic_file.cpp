#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>

#include "core/error.h"

namespace sg {
namespace {

namespace fs = std::filesystem;

// Room for ".", ".tmp-<pid>-<counter>" within NAME_MAX (255): a longer file name is cut in the
// temporary's name only.
constexpr size_t kMaxNameInTemporary = 200;

fs::path folder_of(const fs::path& target) { return target.has_parent_path() ? target.parent_path() : fs::path("."); }

// ".<name>.tmp-": what every temporary of `target` starts with.
std::string temporary_prefix(const fs::path& target) {
  const std::string name = target.filename().string();
  std::string prefix(1, '.');
  prefix.append(name, 0, kMaxNameInTemporary);
  prefix.append(".tmp-");
  return prefix;
}

bool all_digits(std::string_view text) {
  return !text.empty() && text.size() <= 19 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// fsync, retried when a signal interrupts it; 0 or errno.
int sync_descriptor(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// close(); 0 or errno. EINTR counts as closed: Linux releases the descriptor before it can be
// interrupted, and the data was fsync'ed already (retrying could close another thread's file).
int close_descriptor(int fd) { return ::close(fd) == 0 || errno == EINTR ? 0 : errno; }

// fsync of the file now named `path`, opened afresh (a descriptor opened read-only may be synced).
int sync_by_name(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int error = sync_descriptor(fd);
  const int close_error = close_descriptor(fd);
  return error != 0 ? error : close_error;
}

}  // namespace

fs::path unique_temporary_path(const fs::path& target) {
  SG_CHECK(!target.empty() && target.has_filename(), "cannot write a file at \"", target.string(),
           "\": the path names no file");
  // Unique among processes by the pid, among threads and writes of one process by the counter (a
  // forked child has another pid, so sharing the counter's value is harmless).
  static std::atomic<uint64_t> counter{0};
  return folder_of(target) / detail::concat(temporary_prefix(target), ::getpid(), "-", counter.fetch_add(1));
}

std::optional<pid_t> temporary_writer(const fs::path& candidate, const fs::path& target) {
  if (candidate.parent_path().lexically_normal() != folder_of(target).lexically_normal()) return std::nullopt;
  const std::string name = candidate.filename().string();
  const std::string prefix = temporary_prefix(target);
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string_view rest = std::string_view(name).substr(prefix.size());  // "<pid>-<counter>"
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos || !all_digits(rest.substr(0, dash)) || !all_digits(rest.substr(dash + 1)))
    return std::nullopt;
  const long long pid = std::stoll(std::string(rest.substr(0, dash)));
  if (pid <= 0 || pid > 0x7fffffff) return std::nullopt;
  return static_cast<pid_t>(pid);
}

std::vector<fs::path> temporaries_of(const fs::path& target) {
  std::vector<fs::path> found;
  std::error_code error;
  for (fs::directory_iterator it(folder_of(target), error), end; !error && it != end; it.increment(error))
    if (temporary_writer(it->path(), target)) found.push_back(it->path());
  std::sort(found.begin(), found.end());
  return found;
}

int remove_abandoned_temporaries(const fs::path& target) {
  int removed = 0;
  for (const fs::path& path : temporaries_of(target)) {
    const pid_t pid = *temporary_writer(path, target);
    // kill(pid, 0): 0 or EPERM means a process with that pid exists; keep its file.
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;  // best effort: another process may be removing it too
    removed += fs::remove(path, ignored) ? 1 : 0;
  }
  return removed;
}

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  // O_EXCL: never write into a file someone else created under the name. Permissions 0666 less
  // the umask, as fopen gives.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    temporary_ = unique_temporary_path(target_);
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) break;
    const int error = errno;
    if (error == EEXIST && attempt < 100) continue;  // a stale file from a reused pid: take the next number
    throw Error(detail::concat(target_.string(), ": cannot create the temporary file ", temporary_.string(), ": ",
                               std::strerror(error), " (does the folder exist, and is it writable?)"));
  }
}

AtomicFile::~AtomicFile() {
  if (!finished_) discard();
}

void AtomicFile::discard() noexcept {
  // Cleanup on a path that already failed (or is unwinding): errors here cannot be reported
  // without hiding the first one, and the target is untouched either way.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
}

void AtomicFile::fail(const std::string& step, int error) {
  discard();
  finished_ = true;  // nothing left for the destructor to undo
  throw Error(detail::concat(target_.string(), ": ", step, " failed: ", std::strerror(error),
                             error == ENOSPC || error == EFBIG || error == EDQUOT ? " (disk full?)" : "", "; ",
                             target_.string(), " is left as it was"));
}

void AtomicFile::write(std::string_view bytes) {
  SG_CHECK(fd_ >= 0 && !finished_, target_.string(), ": write after the write was committed or failed");
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      fail("writing " + temporary_.string(), error);
    }
    if (n == 0) fail("writing " + temporary_.string(), EIO);  // no progress and no error: do not spin
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void AtomicFile::commit() {
  SG_CHECK(fd_ >= 0 && !finished_, target_.string(), ": commit after the write was committed or failed");
  // What is named temporary_ now gets synced: normally the file behind fd_; a library that
  // replaced the file instead of truncating it left another one, synced by name.
  struct stat by_name = {};
  struct stat ours = {};
  if (::stat(temporary_.c_str(), &by_name) != 0) {
    const int error = errno;
    fail("finding " + temporary_.string(), error);
  }
  if (::fstat(fd_, &ours) != 0) {
    const int error = errno;
    fail("examining " + temporary_.string(), error);
  }
  const bool same_file = by_name.st_dev == ours.st_dev && by_name.st_ino == ours.st_ino;
  if (const int error = same_file ? sync_descriptor(fd_) : sync_by_name(temporary_))
    fail("fsync of " + temporary_.string(), error);
  const int fd = fd_;
  fd_ = -1;
  if (const int error = close_descriptor(fd)) fail("closing " + temporary_.string(), error);
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) {
    const int error = errno;
    fail("renaming " + temporary_.string() + " into place", error);
  }
  finished_ = true;

  const fs::path folder = folder_of(target_);
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int error = folder_fd < 0 ? errno : sync_descriptor(folder_fd);
  if (folder_fd >= 0) {
    const int close_error = close_descriptor(folder_fd);
    if (error == 0) error = close_error;
  }
  // EINVAL: a file system that cannot sync a folder (some network and FUSE ones) says so; the
  // rename is then as durable as that file system makes it, and nothing more can be done.
  if (error != 0 && error != EINVAL)
    throw Error(detail::concat(target_.string(), ": written, but the fsync of its folder ", folder.string(),
                               " failed: ", std::strerror(error), " (the new file may not survive a power cut)"));
}

void write_file_atomically(const fs::path& target, std::string_view bytes) {
  AtomicFile file(target);
  file.write(bytes);
  file.commit();
}

}  // namespace sg
