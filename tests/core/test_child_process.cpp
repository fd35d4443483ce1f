// core/child_process.h: results, errors, crashes and hangs of the work run in a child process.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/child_process.h"
#include "core/error.h"

// GCC says __SANITIZE_ADDRESS__, clang 14 only __has_feature(address_sanitizer).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_CLANG_ASAN 1
#endif
#endif
#ifndef SG_CLANG_ASAN
#define SG_CLANG_ASAN 0
#endif

namespace sg {
namespace {

std::string error_of(const std::function<int()>& work, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  try {
    run_in_child_process("reading x.h5", work, timeout);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ChildProcess, ReturnsTheExitStatusTheWorkReturns) {
  EXPECT_EQ(run_in_child_process("work", [] { return 0; }, std::chrono::seconds(30)), 0);
  EXPECT_EQ(run_in_child_process("work", [] { return 1; }, std::chrono::seconds(30)), 1);
  EXPECT_EQ(run_in_child_process("work", [] { return 2; }, std::chrono::seconds(30)), 2);
}

TEST(ChildProcess, TheChildsErrorComesBackAsAnError) {
  EXPECT_EQ(error_of([]() -> int { throw Error("x.h5: layer 'stem_conv' has no kernel"); }),
            "x.h5: layer 'stem_conv' has no kernel");
  EXPECT_EQ(error_of([]() -> int { throw std::runtime_error("bad_alloc of something"); }), "bad_alloc of something");
  EXPECT_EQ(error_of([] { return 7; }), "reading x.h5: returned 7, expected 0, 1 or 2");
}

TEST(ChildProcess, ACrashInTheChildIsAnErrorHere) {
  const std::string segv = error_of([]() -> int {
    std::raise(SIGSEGV);
    return 0;
  });
#if defined(__SANITIZE_ADDRESS__) || SG_CLANG_ASAN
  // AddressSanitizer catches the SIGSEGV in the child, reports it and exits with status 1.
  EXPECT_NE(segv.find("reading x.h5: ended with exit status 1"), std::string::npos) << segv;
#else
  EXPECT_NE(segv.find("reading x.h5: crashed (signal 11, SIGSEGV)"), std::string::npos) << segv;
#endif
  EXPECT_NE(segv.find("the file is damaged"), std::string::npos) << segv;
  const std::string abort = error_of([]() -> int { std::abort(); });
  EXPECT_NE(abort.find("crashed (signal 6, SIGABRT)"), std::string::npos) << abort;
  EXPECT_EQ(error_of([]() -> int { std::_Exit(42); }).find("reading x.h5: ended with exit status 42"), 0u);
  // A library that calls exit(0) or exit(1) in the middle is not a result.
  EXPECT_EQ(error_of([]() -> int { std::_Exit(0); }).find("reading x.h5: ended with exit status 0"), 0u);
  EXPECT_EQ(error_of([]() -> int { std::_Exit(1); }).find("reading x.h5: ended with exit status 1"), 0u);
}

TEST(ChildProcess, AHangIsKilledAtTheTimeLimit) {
  const auto start = std::chrono::steady_clock::now();
  const std::string hang = error_of(
      []() -> int {
        for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      },
      std::chrono::seconds(1));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(hang, "reading x.h5: did not finish within 1 s (killed); the file is probably damaged");
  EXPECT_LT(seconds, 20.0);  // killed, not waited for
}

TEST(ChildProcess, TimeLimitGrowsWithTheFileAndTheEnvironmentReplacesIt) {
  ::unsetenv("SLIDEGRADE_READ_TIME_LIMIT");
  EXPECT_EQ(child_time_limit_for_file(0).count(), 60);
  EXPECT_EQ(child_time_limit_for_file(uint64_t(260) << 20).count(), 125);
  ::setenv("SLIDEGRADE_READ_TIME_LIMIT", "7", 1);
  EXPECT_EQ(child_time_limit_for_file(uint64_t(260) << 20).count(), 7);
  ::setenv("SLIDEGRADE_READ_TIME_LIMIT", "soon", 1);
  EXPECT_THROW(child_time_limit_for_file(0), Error);
  ::unsetenv("SLIDEGRADE_READ_TIME_LIMIT");
}

}  // namespace
}  // namespace sg
