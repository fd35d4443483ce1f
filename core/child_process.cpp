#include "core/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "core/error.h"

namespace sg {
namespace {

// The child's exit statuses: work() returned r -> kResultStatus + r; work() threw -> kErrorStatus,
// with the message in the pipe. Anything else (0 or 1 from a library's exit(), a sanitizer's
// report, which exits with 1) means the child ended before work() did.
constexpr int kResultStatus = 100;
constexpr int kErrorStatus = 99;

// The child's end: sends the error text (if any) and leaves without running the parent's atexit
// handlers or destructors (they belong to the parent's copy of the state).
[[noreturn]] void child_exit(int write_fd, const char* message, int status) {
  if (message != nullptr) {
    size_t left = std::strlen(message);
    while (left > 0) {
      const ssize_t n = ::write(write_fd, message, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      message += n;
      left -= size_t(n);
    }
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(status);
}

// What the child's status says, for messages.
std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return detail::concat("crashed (signal ", sig, name ? detail::concat(", SIG", name) : std::string(), ")");
  }
  return detail::concat("ended with exit status ", WEXITSTATUS(status));
}

}  // namespace

int run_in_child_process(const std::string& what, const std::function<int()>& work, std::chrono::seconds timeout) {
  int fds[2];
  SG_CHECK(::pipe2(fds, O_CLOEXEC) == 0, what, ": cannot create a pipe: ", std::strerror(errno));
  // Buffered output would be written twice, once by each process.
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(detail::concat(what, ": cannot fork: ", std::strerror(error)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    int result = 0;
    try {
      result = work();
    } catch (const std::exception& e) {
      child_exit(fds[1], e.what(), kErrorStatus);
    } catch (...) {
      child_exit(fds[1], "unknown exception", kErrorStatus);
    }
    if (result < 0 || result > 2)
      child_exit(fds[1], detail::concat(what, ": returned ", result, ", expected 0, 1 or 2").c_str(), kErrorStatus);
    child_exit(fds[1], nullptr, kResultStatus + result);
  }
  ::close(fds[1]);

  // Read the error text until the child closes the pipe (it exits), or the deadline passes.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string message;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, int(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child has exited (or closed the pipe on its way out)
    message.append(buffer, size_t(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    SG_CHECK(errno == EINTR, what, ": waitpid failed: ", std::strerror(errno));
  }
  if (timed_out)
    throw Error(detail::concat(what, ": did not finish within ", timeout.count(),
                               " s (killed); the file is probably damaged"));
  if (WIFEXITED(status) && WEXITSTATUS(status) >= kResultStatus && WEXITSTATUS(status) <= kResultStatus + 2)
    return WEXITSTATUS(status) - kResultStatus;
  if (WIFEXITED(status) && WEXITSTATUS(status) == kErrorStatus && !message.empty()) throw Error(message);
  throw Error(detail::concat(what, ": ", describe_status(status),
                             "; the file is damaged or not what it claims to be (its reader failed inside a library)"));
}

std::chrono::seconds child_time_limit_for_file(uint64_t bytes) {
  if (const char* text = std::getenv("SLIDEGRADE_READ_TIME_LIMIT")) {
    char* end = nullptr;
    const long seconds = std::strtol(text, &end, 10);
    SG_CHECK(end != text && *end == '\0' && seconds > 0, "SLIDEGRADE_READ_TIME_LIMIT=", text,
             ": expected a whole number of seconds > 0");
    return std::chrono::seconds(seconds);
  }
  return std::chrono::seconds(60 + bytes / (uint64_t(4) << 20));
}

}  // namespace sg
